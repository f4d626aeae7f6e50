"""Build the demo data set (transaction Bundles) of this directory from the seed documents.

Run ``python -m fhir_server.demo_data.build`` from the repository root to rewrite the ``NN-*.json`` files;
the JSON is committed, so the server never runs this. What each file holds and where it comes from:
``README.md`` here. Codes come from ``terminology/`` (same canonical base).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

from terminology.loader import CANONICAL_BASE, MOH_CORE_BASE

Res = dict[str, Any]
CS = f"{CANONICAL_BASE}/CodeSystem/"
SD = f"{CANONICAL_BASE}/StructureDefinition/"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SEED1 = "seed:001_4baef2f7a8d05b1a"
SEED3 = "seed:003_2ffd77feb72a25a3"

OUT = Path(__file__).resolve().parent
HL7_ORG = "http://terminology.hl7.org/CodeSystem/organization-type"
HL7_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
LOC_PT = "http://terminology.hl7.org/CodeSystem/location-physical-type"
MOH = MOH_CORE_BASE
FACILITY_SID = f"{CANONICAL_BASE}/sid/facility-code"
PROVINCES = {"01": "Thành phố Hà Nội", "79": "Thành phố Hồ Chí Minh", "75": "Tỉnh Đồng Nai", "51": "Tỉnh Quảng Ngãi"}
DISP: dict[str, dict[str, str]] = {
    "facility-tier": {"central": "Tuyến trung ương", "provincial": "Tuyến tỉnh", "district": "Tuyến huyện / khu vực",
                      "commune": "Tuyến xã"},
    "technical-level": {"primary": "Cấp khám bệnh, chữa bệnh ban đầu"},
    "facility-type": {"hospital": "Bệnh viện", "general-hospital": "Bệnh viện đa khoa",
                      "regional-general-hospital": "Bệnh viện đa khoa khu vực",
                      "specialty-hospital": "Bệnh viện chuyên khoa",
                      "health-centre": "Trung tâm y tế (huyện / khu vực)",
                      "commune-health-station": "Trạm y tế xã, phường, thị trấn"},
    "telehealth-service": {"advice": "Tư vấn sức khỏe từ xa", "examination": "Khám bệnh, chữa bệnh từ xa",
                           "consultation": "Hội chẩn từ xa",
                           "consultation-general": "Hội chẩn chung (khám, chữa bệnh)",
                           "consultation-imaging": "Hội chẩn chẩn đoán hình ảnh từ xa"},
    "telehealth-urgency": {"scheduled": "Định kỳ", "urgent": "Đột xuất"},
    "qualification": {"BSCK2": "Bác sĩ chuyên khoa cấp II (BS CK II)", "THS-BS": "Thạc sĩ, bác sĩ (ThS.BS)"},
    "data-origin": {"seed": "Lấy từ tài liệu nguồn", "synthetic": "Dữ liệu giả lập (hư cấu)"},
    "ethnicity": {"01": "Kinh"},
}
SPEC = {"neurology": "Nội thần kinh", "otorhinolaryngology": "Tai Mũi Họng", "gastroenterology": "Nội tiêu hóa",
        "interventional-cardiology": "Can thiệp tim mạch", "general-surgery": "Ngoại tổng quát",
        "emergency-critical-care": "Hồi sức cấp cứu", "surgical-oncology": "Ngoại ung bướu",
        "obstetrics-gynaecology": "Sản phụ khoa", "diagnostic-imaging": "Chẩn đoán hình ảnh", "urology": "Ngoại niệu"}
DISP["specialty"] = SPEC


def coding(cs: str, code: str) -> Res:
    return {"system": CS + cs, "code": code, "display": DISP[cs][code]}


def cc(cs: str, code: str, text: str | None = None) -> Res:
    d: Res = {"coding": [coding(cs, code)]}
    if text:
        d["text"] = text
    return d


def meta(origin: str, source: str | None = None) -> Res:
    m: Res = {"tag": [coding("data-origin", origin)]}
    if source:
        m["source"] = source
    return m


def slug(s: str) -> str:
    s = s.replace("đ", "d").replace("Đ", "D")
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(ch if ch.isalnum() else " " for ch in s).split())


def address(province: str, district: str | None = None, text: str | None = None,
            commune: str | None = None) -> Res:
    a: Res = {"extension": [{"url": SD + "address-province",
                        "valueCoding": {"system": CS + "province", "code": province,
                                        "display": PROVINCES[province]}}],
         "use": "work"}
    if text:
        a["text"] = text
    if commune:
        a["line"] = [commune]
    if district:
        a["district"] = district
    a["state"] = PROVINCES[province]
    a["country"] = "VN"
    return a


def org(id_: str, name: str, *, source: str, kind: str = "prov", ftype: str | None = None, tier: str | None = None,
        level: str | None = None, province: str | None = None, district: str | None = None,
        addr_text: str | None = None, part_of: str | None = None, alias: list[str] | None = None,
        code: str | None = None, commune: str | None = None, origin: str = "seed") -> Res:
    r: Res = {"resourceType": "Organization", "id": id_, "meta": meta(origin, source)}
    if code:
        r["identifier"] = [{"system": FACILITY_SID, "value": code}]
    r["active"] = True
    hl7 = {"prov": "Healthcare Provider", "govt": "Government", "other": "Other"}[kind]
    types = [{"coding": [{"system": HL7_ORG, "code": kind, "display": hl7}]}]
    if ftype:
        types.append(cc("facility-type", ftype))
    if tier:
        types.append(cc("facility-tier", tier))
    if level:
        types.append(cc("technical-level", level))
    r["type"] = types
    r["name"] = name
    if alias:
        r["alias"] = alias
    if province:
        r["address"] = [address(province, district, addr_text, commune)]
    if part_of:
        r["partOf"] = {"reference": f"Organization/{part_of}"}
    return r


def put(resources: list[Res]) -> Res:
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                      for r in resources]}




def build() -> dict[str, Res]:
    """file name → transaction Bundle."""
    out: dict[str, Res] = {}
    OLD = " (địa giới trước 01/7/2025)"

    # ============================================================ 01 Đồng Nai organisations
    national = [
        org("org-bo-y-te", "Bộ Y tế", alias=["Ministry of Health"], kind="govt", province="01", source=SEED1),
        org("org-network-de-an-2628", "Đề án Khám, chữa bệnh từ xa giai đoạn 2020–2025 (Quyết định 2628/QĐ-BYT)",
            kind="other", part_of="org-bo-y-te", source=SEED1),
        org("org-syt-dong-nai", "Sở Y tế tỉnh Đồng Nai", kind="govt", province="75", source=SEED1),
    ]
    HCM = "79"
    HN = "01"
    upper = [
        ("cho-ray", "Bệnh viện Chợ Rẫy", None, "general-hospital", "central", HCM, "org-bo-y-te", None),
        ("bach-mai", "Bệnh viện Bạch Mai", None, "general-hospital", "central", HN, "org-bo-y-te", "01001"),
        ("benh-nhiet-doi-tphcm", "Bệnh viện Bệnh Nhiệt đới Thành phố Hồ Chí Minh",
         ["Bệnh viện Nhiệt Đới TP Hồ Chí Minh"], "specialty-hospital", None, HCM, None, None),
        ("rhm-tu-tphcm", "Bệnh viện Răng Hàm Mặt Trung ương Thành phố Hồ Chí Minh", None, "specialty-hospital",
         "central", HCM, "org-bo-y-te", None),
        ("dh-y-duoc-tphcm", "Bệnh viện Đại học Y Dược Thành phố Hồ Chí Minh", None, "general-hospital", None, HCM,
         None, None),
        ("ung-buou-tphcm", "Bệnh viện Ung bướu Thành phố Hồ Chí Minh", None, "specialty-hospital", None, HCM, None,
         None),
        ("tu-du", "Bệnh viện Từ Dũ", ["Bệnh viện Từ Dũ TP Hồ Chí Minh"], "specialty-hospital", None, HCM, None, None),
        ("nhi-dong-1", "Bệnh viện Nhi đồng 1", ["Bệnh viện Nhi đồng 1 TP Hồ Chí Minh"], "specialty-hospital", None,
         HCM, None, None),
        ("noi-tiet-tu", "Bệnh viện Nội tiết Trung ương", None, "specialty-hospital", "central", HN, "org-bo-y-te",
         None),
        ("benh-nhiet-doi-tu", "Bệnh viện Bệnh Nhiệt đới Trung ương", ["Bệnh viện Nhiệt đới Trung ương"],
         "specialty-hospital", "central", HN, "org-bo-y-te", None),
        ("tmh-tu", "Bệnh viện Tai Mũi Họng Trung ương", None, "specialty-hospital", "central", HN, "org-bo-y-te",
         None),
    ]
    upper_orgs = [org("org-" + i, n, alias=a, ftype=t, tier=tier, province=p, part_of=po, code=code, source=SEED1)
                  for i, n, a, t, tier, p, po, code in upper]

    SYT = "org-syt-dong-nai"
    # seed 001 table: (row, id, name, alias, tier, type, partOf, district, [upper ids])
    DN_ROWS = [
        (1, "bvdk-thong-nhat-dong-nai", "Bệnh viện Đa khoa Thống Nhất Đồng Nai", ["BVĐK Thống Nhất Đồng Nai"],
         "provincial", "general-hospital", SYT, None,
         ["cho-ray", "benh-nhiet-doi-tphcm", "rhm-tu-tphcm", "dh-y-duoc-tphcm", "ung-buou-tphcm", "tu-du"]),
        (2, "bv-nhi-dong-dong-nai", "Bệnh viện Nhi đồng Đồng Nai", None, "provincial", "specialty-hospital", SYT, None,
         ["nhi-dong-1"]),
        (3, "bvdkkv-long-khanh", "Bệnh viện Đa khoa khu vực Long Khánh", ["BVĐK Khu vực Long Khánh"], None,
         "regional-general-hospital", SYT, "Long Khánh", ["cho-ray", "tu-du", "nhi-dong-1", "benh-nhiet-doi-tphcm"]),
        (4, "ttyt-cam-my", "Trung tâm Y tế huyện Cẩm Mỹ", None, "district", "health-centre", SYT, "huyện Cẩm Mỹ",
         ["bach-mai", "noi-tiet-tu", "benh-nhiet-doi-tu"]),
        (5, "ttyt-cam-my", None, None, None, None, None, None, ["bach-mai", "noi-tiet-tu", "benh-nhiet-doi-tu"]),
        (6, "bv-rhm-viet-anh-duc", "Bệnh viện Chuyên khoa Răng Hàm Mặt Việt Anh Đức", None, None, "specialty-hospital",
         None, None, ["rhm-tu-tphcm"]),
        (7, "bv-au-co", "Bệnh viện Âu Cơ", None, None, "hospital", None, None, ["tu-du", "nhi-dong-1"]),
        (8, "bvdk-dong-nai", "Bệnh viện Đa khoa Đồng Nai", None, "provincial", "general-hospital", SYT, None,
         ["cho-ray", "tmh-tu", "rhm-tu-tphcm", "dh-y-duoc-tphcm", "ung-buou-tphcm", "tu-du", "nhi-dong-1",
          "benh-nhiet-doi-tphcm"]),
        (9, "bvdkkv-long-thanh", "Bệnh viện Đa khoa khu vực Long Thành", ["Bệnh viện ĐKKV Long Thành"], None,
         "regional-general-hospital", SYT, "Long Thành", ["cho-ray", "tu-du", "benh-nhiet-doi-tphcm"]),
        (10, "bvdkkv-dinh-quan", "Bệnh viện Đa khoa khu vực Định Quán", ["Bệnh viện ĐKKV Định Quán"], None,
         "regional-general-hospital", SYT, "Định Quán", ["tu-du", "nhi-dong-1"]),
        (11, "ttyt-tan-phu", "Trung tâm Y tế huyện Tân Phú", None, "district", "health-centre", SYT, "huyện Tân Phú",
         ["cho-ray", "dh-y-duoc-tphcm", "ung-buou-tphcm", "tu-du", "nhi-dong-1", "benh-nhiet-doi-tphcm"]),
        (12, "ttyt-vinh-cuu", "Trung tâm Y tế huyện Vĩnh Cửu", None, "district", "health-centre", SYT,
         "huyện Vĩnh Cửu", ["cho-ray", "tu-du", "nhi-dong-1", "benh-nhiet-doi-tphcm"]),
        (13, "bv-quoc-te-dong-nai", "Bệnh viện Quốc tế Đồng Nai", None, None, "hospital", None, None, ["tu-du"]),
        (14, "ttyt-trang-bom", "Trung tâm Y tế huyện Trảng Bom", None, "district", "health-centre", SYT,
         "huyện Trảng Bom", ["cho-ray", "tu-du"]),
    ]
    lower_orgs = []
    affs = []
    seen_aff = set()
    for _row, i, n, a, tier, t, po, dist, ups in DN_ROWS:
        if n:
            lower_orgs.append(org("org-" + i, n, alias=a, tier=tier, ftype=t, part_of=po, province="75", district=dist,
                                  addr_text=(f"{dist}, tỉnh Đồng Nai" + OLD) if dist else None, source=SEED1))
        for u in ups:
            aid = f"aff-{i}--{u}"
            if aid in seen_aff:
                continue
            seen_aff.add(aid)
            affs.append({
                "resourceType": "OrganizationAffiliation", "id": aid, "meta": meta("seed", SEED1), "active": True,
                "organization": {"reference": f"Organization/org-{u}"},
                "participatingOrganization": {"reference": f"Organization/org-{i}"},
                "network": [{"reference": "Organization/org-network-de-an-2628"}],
                "code": [cc("telehealth-service", "consultation",
                            "Đăng ký tham gia Đề án KCB từ xa với bệnh viện tuyến trên")],
            })
    out["01-dong-nai-organizations.json"] = put(national + upper_orgs + lower_orgs)
    out["02-dong-nai-affiliations.json"] = put(affs)

    # ============================================================ 03 Đồng Nai specialists
    SPECIALISTS = [
        ("Ngô Đức Tuấn", "BSCK2", "BS CK II", "neurology", "Nội Thần kinh"),
        ("Lê Thị Phương Trâm", "BSCK2", "BS CK II", "otorhinolaryngology", "Tai Mũi Họng"),
        ("Đinh Cao Minh", "BSCK2", "BS CK II", "gastroenterology", "Nội Tiêu hóa"),
        ("Đặng Hà Hữu Phước", "BSCK2", "BS CK II", "interventional-cardiology", "Can thiệp tim mạch"),
        ("Trần Quốc Vĩ", "BSCK2", "BS. CK II", "general-surgery", "Ngoại Tổng quát"),
        ("Đào Nguyễn Minh Châu", "BSCK2", "BS. CK II", "emergency-critical-care", "Hồi sức cấp cứu"),
        ("Lê Đức Nhân", "BSCK2", "BS. CK II", "surgical-oncology", "Ngoại Ung bướu"),
        ("Nguyễn Mạnh Hoan", "THS-BS", "ThS. BS", "obstetrics-gynaecology", "Sản phụ khoa"),
        ("Nguyễn Hoàng Trung", "BSCK2", "BS. CK II", "diagnostic-imaging", "Chẩn đoán hình ảnh"),
        ("Phạm Xuân Sơn", "THS-BS", "ThS. BS", "urology", "Ngoại Niệu"),
        ("Dương Tấn Thọ", "BSCK2", "BS. CK II", "gastroenterology", "Nội Tiêu hóa"),
    ]
    TS_EXT = SD + "telehealth-service"
    pracs = []
    for full, q, qtext, spec, spec_text in SPECIALISTS:
        parts = full.split()
        s = slug(full)
        pracs.append({
            "resourceType": "Practitioner", "id": f"prac-{s}", "meta": meta("seed", SEED1), "active": True,
            "name": [{"use": "official", "text": full, "family": parts[0], "given": parts[1:]}],
            "qualification": [{"code": cc("qualification", q, qtext)}],
        })
        pracs.append({
            "resourceType": "PractitionerRole", "id": f"prole-{s}", "meta": meta("seed", SEED1),
            "extension": [{"url": TS_EXT, "valueCoding": coding("telehealth-service", "examination")},
                          {"url": TS_EXT, "valueCoding": coding("telehealth-service", "consultation")}],
            "active": True,
            "practitioner": {"reference": f"Practitioner/prac-{s}", "display": full},
            "organization": {"reference": "Organization/org-syt-dong-nai"},
            "code": [{"coding": [{"system": HL7_ROLE, "code": "doctor", "display": "Doctor"}],
                      "text": "Chuyên gia tham gia khám, chữa bệnh từ xa của Sở Y tế"}],
            "specialty": [cc("specialty", spec, spec_text)],
        })
    out["03-dong-nai-specialists.json"] = put(pracs)

    # ============================================================ 04 Kon Tum
    SYTK = "org-syt-kon-tum"
    KT = " (tỉnh Kon Tum trước 01/7/2025; nay thuộc tỉnh Quảng Ngãi – mã 51 chưa xác minh)"
    kt = [
        org(SYTK, "Sở Y tế tỉnh Kon Tum", kind="govt", province="51", addr_text="tỉnh Kon Tum" + KT, source=SEED3),
        org("org-network-vtelehealth-kon-tum",
            "Nền tảng Hỗ trợ tư vấn khám, chữa bệnh từ xa (Vtelehealth) – tỉnh Kon Tum", kind="other", part_of=SYTK,
            source=SEED3),
        org("org-bvdk-tinh-kon-tum", "Bệnh viện Đa khoa tỉnh Kon Tum", ftype="general-hospital", tier="provincial",
            part_of=SYTK, province="51", addr_text="tỉnh Kon Tum" + KT, source=SEED3),
        org("org-bvdkkv-ngoc-hoi", "Bệnh viện Đa khoa khu vực Ngọc Hồi", alias=["Bệnh viện ĐKKV Ngọc Hồi"],
            ftype="regional-general-hospital", part_of=SYTK, province="51", district="huyện Ngọc Hồi",
            addr_text="huyện Ngọc Hồi, tỉnh Kon Tum" + KT, source=SEED3),
    ]
    TTYT = {"dak-glei": "Đăk Glei", "dak-to": "Đăk Tô", "ia-hdrai": "Ia H'Drai", "dak-ha": "Đăk Hà",
            "sa-thay": "Sa Thầy", "kon-plong": "Kon Plông"}
    for k, v in TTYT.items():
        kt.append(org(f"org-ttyt-{k}", f"Trung tâm Y tế huyện {v}", ftype="health-centre", tier="district",
                      part_of=SYTK, province="51", district=f"huyện {v}", addr_text=f"huyện {v}, tỉnh Kon Tum" + KT,
                      source=SEED3))
    NH, BT = "org-bvdkkv-ngoc-hoi", "org-bvdk-tinh-kon-tum"
    # seed 003 §2.3 a): (commune, district, unit in the 'Trung tâm Y tế' column, support hospital)
    PILOT: list[tuple[str, str | None, str, str]] = [("Pờ Y", "Ngọc Hồi", NH, NH)]
    PILOT += [(x, "Đăk Glei", "org-ttyt-dak-glei", NH) for x in ("Đăk Pék", "Đăk Môn", "Đăk Long", "Ngọc Linh")]
    PILOT += [(x, "Đăk Tô", "org-ttyt-dak-to", NH) for x in ("Diên Bình", "Tân Cảnh")]
    PILOT += [(x, None, BT, BT) for x in ("Đoàn Kết", "Hòa Bình")]
    PILOT += [("Ia Dom", "Ia H'Drai", "org-ttyt-ia-hdrai", BT), ("Đăk Ngọk", "Đăk Hà", "org-ttyt-dak-ha", BT)]
    PILOT += [(x, "Sa Thầy", "org-ttyt-sa-thay", BT) for x in ("Sa Nghĩa", "Sa Sơn")]
    PILOT += [(x, "Kon Plông", "org-ttyt-kon-plong", BT) for x in ("Măng Cành", "Pờ Ê")]
    assert len(PILOT) == 15
    kt_aff = []


    def kt_affiliation(tyt: str, upper_id: str, codes: list[str]) -> Res:
        return {"resourceType": "OrganizationAffiliation", "id": f"aff-{tyt[4:]}--{upper_id[4:]}",
                "meta": meta("seed", SEED3), "active": True, "period": {"start": "2024-05-16"},
                "organization": {"reference": f"Organization/{upper_id}"},
                "participatingOrganization": {"reference": f"Organization/{tyt}"},
                "network": [{"reference": "Organization/org-network-vtelehealth-kon-tum"}],
                "code": [cc("telehealth-service", x) for x in codes]}


    for commune, dist, unit, support in PILOT:
        tid = "org-tyt-" + slug(commune)
        where = f"{commune}, huyện {dist}, tỉnh Kon Tum" if dist else f"{commune}, tỉnh Kon Tum"
        kt.append(org(tid, f"Trạm Y tế {commune}", ftype="commune-health-station", tier="commune", level="primary",
                      part_of=unit if unit.startswith("org-ttyt-") else None, province="51",
                      district=f"huyện {dist}" if dist else None, commune=commune, addr_text=where + KT, source=SEED3))
        if unit == support:
            kt_aff.append(kt_affiliation(tid, unit, ["advice", "examination", "consultation"]))
        else:
            kt_aff.append(kt_affiliation(tid, unit, ["advice", "examination"]))
            kt_aff.append(kt_affiliation(tid, support, ["consultation"]))
    out["04-kon-tum.json"] = put(kt + kt_aff)

    # ============================================================ 05 rooms, telehealth roles, schedules, slots
    locs = []
    for k, n in (("cam-my", "Cẩm Mỹ"), ("tan-phu", "Tân Phú"), ("vinh-cuu", "Vĩnh Cửu")):
        locs.append({
            "resourceType": "Location", "id": f"loc-phong-tu-van-ttyt-{k}", "meta": meta("seed", SEED1),
            "status": "active", "name": f"Phòng tư vấn khám, chữa bệnh từ xa – Trung tâm Y tế huyện {n}",
            "description": "Phòng tư vấn KCB từ xa do Bộ Y tế và Tập đoàn Công nghiệp – Viễn thông Quân đội lắp đặt "
                           "(báo cáo Sở Y tế Đồng Nai, 2020).",
            "mode": "instance",
            "physicalType": {"coding": [{"system": LOC_PT, "code": "ro", "display": "Room"}]},
            "managingOrganization": {"reference": f"Organization/org-ttyt-{k}"},
        })


    def vroom(id_: str, name: str, org_id: str, url: str) -> Res:
        return {
            "resourceType": "Location", "id": id_, "meta": meta("synthetic"), "status": "active", "name": name,
            "description": "Phòng khám/hội chẩn trực tuyến (phòng ảo) – dữ liệu giả lập. Virtual room, synthetic.",
            "mode": "instance", "telecom": [{"system": "url", "value": url}],
            "physicalType": {"coding": [{"system": LOC_PT, "code": "vi", "display": "Virtual"}]},
            "managingOrganization": {"reference": f"Organization/{org_id}"},
        }


    locs.append(vroom("loc-vr-syt-dong-nai", "Phòng hội chẩn trực tuyến – chuyên gia Sở Y tế Đồng Nai",
                      "org-syt-dong-nai", "https://telehealth.example.org/rooms/syt-dong-nai"))
    locs.append(vroom("loc-vr-bvdk-tinh-kon-tum", "Phòng tư vấn từ xa – Bệnh viện Đa khoa tỉnh Kon Tum",
                      "org-bvdk-tinh-kon-tum", "https://telehealth.example.org/rooms/bvdk-tinh-kon-tum"))

    TZ = "+07:00"
    # practitioner slug, specialty, services, availableTime, slots [(date, start, end)]
    SCHED = [
        ("ngo-duc-tuan", "neurology", ["examination", "consultation-general"],
         [(["tue"], "08:00:00", "11:30:00"), (["thu"], "14:00:00", "16:30:00")],
         [("2026-12-01", "08:00", "08:30"), ("2026-12-01", "08:30", "09:00"), ("2026-12-03", "14:00", "14:30"),
          ("2026-12-03", "14:30", "15:00"), ("2026-12-08", "08:00", "08:30")]),
        ("nguyen-hoang-trung", "diagnostic-imaging", ["consultation-imaging"],
         [(["wed"], "09:00:00", "11:00:00")],
         [("2026-12-02", "09:00", "09:30"), ("2026-12-02", "09:30", "10:00"), ("2026-12-09", "09:00", "09:30"),
          ("2026-12-09", "09:30", "10:00")]),
        ("nguyen-manh-hoan", "obstetrics-gynaecology", ["advice", "examination"],
         [(["fri"], "08:00:00", "11:00:00")],
         [("2026-12-04", "08:00", "08:30"), ("2026-12-04", "08:30", "09:00"), ("2026-12-11", "08:00", "08:30")]),
    ]
    BOOKED = {"slot-ngo-duc-tuan-20261201-0800", "slot-nguyen-hoang-trung-20261202-0900"}
    sched_res = []
    for s, spec, services, avail, slots in SCHED:
        role = f"prole-{s}-tele"
        sched_res.append({
            "resourceType": "PractitionerRole", "id": role, "meta": meta("synthetic"),
            "extension": [{"url": TS_EXT, "valueCoding": coding("telehealth-service", x)} for x in services],
            "active": True, "period": {"start": "2026-11-30"},
            "practitioner": {"reference": f"Practitioner/prac-{s}"},
            "organization": {"reference": "Organization/org-syt-dong-nai"},
            "code": [{"coding": [{"system": HL7_ROLE, "code": "doctor", "display": "Doctor"}],
                      "text": "Lịch trực khám, chữa bệnh / hội chẩn từ xa (giả lập)"}],
            "specialty": [cc("specialty", spec)],
            "location": [{"reference": "Location/loc-vr-syt-dong-nai"}],
            "availableTime": [{"daysOfWeek": d, "availableStartTime": a, "availableEndTime": b} for d, a, b in avail],
        })
        sid = f"sched-{s}-tele"
        sched_res.append({
            "resourceType": "Schedule", "id": sid, "meta": meta("synthetic"), "active": True,
            "serviceType": [cc("telehealth-service", x) for x in services],
            "specialty": [cc("specialty", spec)],
            "actor": [{"reference": f"PractitionerRole/{role}"}, {"reference": "Location/loc-vr-syt-dong-nai"}],
            "planningHorizon": {"start": f"2026-11-30T00:00:00{TZ}", "end": f"2026-12-13T23:59:59{TZ}"},
            "comment": "Lịch khám, chữa bệnh từ xa (dữ liệu giả lập) / teleconsultation schedule (synthetic)",
        })
        for day, t0, t1 in slots:
            slid = f"slot-{s}-{day.replace('-', '')}-{t0.replace(':', '')}"
            sched_res.append({
                "resourceType": "Slot", "id": slid, "meta": meta("synthetic"),
                "serviceType": [cc("telehealth-service", x) for x in services],
                "specialty": [cc("specialty", spec)],
                "appointmentType": {"coding": [coding("telehealth-urgency", "scheduled")]},
                "schedule": {"reference": f"Schedule/{sid}"},
                "status": "busy" if slid in BOOKED else "free",
                "start": f"{day}T{t0}:00{TZ}", "end": f"{day}T{t1}:00{TZ}",
            })
    out["05-telehealth-rooms-schedules.json"] = put(locs + sched_res)

    # ============================================================ 06 synthetic patients + appointments


    def patient(id_: str, full: str, gender: str, birth: str, cccd: str, bhyt: str, ethnicity: str) -> Res:
        parts = full.split()
        return {
            "resourceType": "Patient", "id": id_, "meta": meta("synthetic"),
            "extension": [{"url": f"{MOH}/StructureDefinition/extension-race",
                           "valueCodeableConcept": cc("ethnicity", ethnicity)}],
            "identifier": [
                {"use": "official", "system": f"{MOH}/sid/national_id", "value": cccd},
                {"system": f"{MOH}/sid/insurance_number", "value": bhyt},
            ],
            "active": True,
            "name": [{"use": "official", "text": full, "family": parts[0], "given": parts[1:]}],
            "gender": gender, "birthDate": birth,
            "address": [dict(address("75", text="Địa chỉ giả lập, tỉnh Đồng Nai (fictional address)"), use="home")],
        }


    pats = [
        # CCCD: 079 (TP HCM birth registration) + 1 (1900s, female) + 68 (1968) + 6 digits
        patient("pat-le-thi-mau", "Lê Thị Mẫu", "female", "1968-03-15", "079168000123", "GD4797900000001", "01"),
        # CCCD: 001 (Hà Nội) + 2 (2000s, male) + 01 (2001) + 6 digits
        patient("pat-tran-van-thu", "Trần Văn Thử", "male", "2001-09-02", "001201000456", "DN4010100000002", "01"),
    ]
    appts = [
        {
            "resourceType": "Appointment", "id": "appt-le-thi-mau-20261201", "meta": meta("synthetic"),
            "status": "booked",
            "serviceType": [cc("telehealth-service", "examination")],
            "specialty": [cc("specialty", "neurology")],
            "appointmentType": {"coding": [coding("telehealth-urgency", "scheduled")]},
            "reasonCode": [{"coding": [{"system": ICD10, "code": "M54.5", "display": "Đau thắt lưng"}],
                            "text": "Đau thắt lưng tái khám (Thông tư 30/2023, dòng 9)"}],
            "description": "Khám bệnh từ xa – dữ liệu giả lập (synthetic)",
            "start": f"2026-12-01T08:00:00{TZ}", "end": f"2026-12-01T08:30:00{TZ}",
            "slot": [{"reference": "Slot/slot-ngo-duc-tuan-20261201-0800"}],
            "created": "2026-11-24",
            "participant": [
                {"actor": {"reference": "Patient/pat-le-thi-mau"}, "required": "required", "status": "accepted"},
                {"actor": {"reference": "PractitionerRole/prole-ngo-duc-tuan-tele"}, "required": "required",
                 "status": "accepted"},
                {"actor": {"reference": "Location/loc-vr-syt-dong-nai"}, "status": "accepted"},
            ],
        },
        {
            "resourceType": "Appointment", "id": "appt-tran-van-thu-20261202", "meta": meta("synthetic"),
            "status": "booked",
            "serviceType": [cc("telehealth-service", "consultation-imaging")],
            "specialty": [cc("specialty", "diagnostic-imaging")],
            "appointmentType": {"coding": [coding("telehealth-urgency", "scheduled")]},
            "reasonCode": [{"coding": [{"system": ICD10, "code": "M47", "display": "Thoái hóa cột sống"}],
                            "text": "Hội chẩn phim X-quang cột sống (giả lập)"}],
            "description": "Hội chẩn chẩn đoán hình ảnh từ xa từ TTYT huyện Tân Phú – dữ liệu giả lập (synthetic)",
            "start": f"2026-12-02T09:00:00{TZ}", "end": f"2026-12-02T09:30:00{TZ}",
            "slot": [{"reference": "Slot/slot-nguyen-hoang-trung-20261202-0900"}],
            "created": "2026-11-24",
            "participant": [
                {"actor": {"reference": "Patient/pat-tran-van-thu"}, "required": "required", "status": "accepted"},
                {"actor": {"reference": "PractitionerRole/prole-nguyen-hoang-trung-tele"}, "required": "required",
                 "status": "accepted"},
                {"actor": {"reference": "Location/loc-vr-syt-dong-nai"}, "status": "accepted"},
                {"actor": {"reference": "Location/loc-phong-tu-van-ttyt-tan-phu"}, "status": "accepted"},
            ],
        },
    ]
    out["06-patients-appointments.json"] = put(pats + appts)
    out.update(generated())
    for bundle in out.values():
        for entry in bundle["entry"]:
            r = entry["resource"]
            if r["resourceType"] in PROFILE_OF:
                r["meta"] = {"profile": [SD + PROFILE_OF[r["resourceType"]]], **r["meta"]}
    return out


PROFILE_OF = {"Organization": "vn-organization", "OrganizationAffiliation": "vn-organization-affiliation",
              "Practitioner": "vn-practitioner", "PractitionerRole": "vn-practitioner-role", "Patient": "vn-patient",
              "Schedule": "vn-schedule", "Slot": "vn-slot", "Appointment": "vn-appointment",
              "Encounter": "vn-encounter", "MedicationRequest": "vn-medication-request",
              "Composition": "vn-consultation-minutes"}
MOH_SID = f"{MOH}/sid/"
PRESCRIPTION_SID = f"{CANONICAL_BASE}/sid/prescription-code"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PART_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
DRUG_CODE = f"{CANONICAL_BASE}/sid/national-drug-code"
DRUG_REG = f"{CANONICAL_BASE}/sid/drug-registration-number"
ETHNIC = {"01": "Kinh", "02": "Tày", "10": "Gia-rai", "13": "Ba na", "14": "Xơ-Đăng", "27": "Gié Triêng"}
DISP["ethnicity"] = ETHNIC
DISP["telehealth-service"].update({"consultation-laboratory": "Hội chẩn xét nghiệm từ xa",
                                   "consultation-surgery": "Hội chẩn phẫu thuật từ xa"})
DISP["prescription-kind"] = {"c": "Đơn thuốc thông thường"}
DISP["consultation-participant-role"] = {"chair": "Chủ trì", "secretary": "Thư ký", "member": "Thành viên"}
DISP["consultation-minutes-section"] = {"case-summary": "Tóm tắt bệnh án", "discussion": "Diễn biến, kết quả hội chẩn",
                                        "conclusion": "Kết luận, chẩn đoán", "treatment-plan": "Hướng điều trị"}
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"]
MIDDLE = {"male": ["Văn", "Hữu", "Đức", "Minh"], "female": ["Thị", "Ngọc", "Thu", "Minh"]}
GIVEN = {"male": ["An", "Bình", "Cường", "Dũng", "Hùng", "Khang"],
         "female": ["Lan", "Mai", "Hoa", "Hương", "Ngân", "Yến"]}
KT_GIVEN = {"male": ["A Blút", "Y Ngọc", "A Thiên"], "female": ["Y Hiền", "Y Liên", "Y Thuý"]}
#: Circular 30/2023 rows 1-20 used for the synthetic remote treatments (ICD-10, display)
TREATED = [("I10", "Tăng huyết áp vô căn (nguyên phát)"), ("E11.9", "Đái tháo đường týp 2 không có biến chứng"),
           ("M17", "Thoái hóa khớp gối"), ("J00", "Viêm mũi họng cấp (cảm thường)")]


def cccd(registration: str, gender: str, birth: str, serial: int) -> str:
    """Synthetic CCCD following the vietnam.md rule: place (3) + century/sex (1) + year (2) + serial (6)."""
    year = int(birth[:4])
    return f"{registration}{2 * (year // 100 - 19) + (1 if gender == 'female' else 0)}{year % 100:02d}{serial:06d}"


def generated() -> dict[str, Res]:
    """Synthetic patients, staff, schedules, appointments, encounters, prescriptions and minutes (fictional)."""
    import random

    rnd = random.Random(20261201)
    TZ = "+07:00"
    out: dict[str, Res] = {}
    # -------- 07: synthetic staff at Bạch Mai (facility code 01001) and Kon Tum, patients
    staff: list[Res] = []

    def doctor(pid: str, full: str, qual: str, org_id: str, spec: str, services: list[str]) -> None:
        parts = full.split()
        staff.append({"resourceType": "Practitioner", "id": pid, "meta": meta("synthetic"), "active": True,
                      "identifier": [{"system": MOH_SID + "provider-license-number",
                                      "value": f"{rnd.randint(1, 999999):06d}/GL-CCHN"}],
                      "name": [{"use": "official", "text": full, "family": parts[0], "given": parts[1:]}],
                      "qualification": [{"code": cc("qualification", qual)}]})
        staff.append({"resourceType": "PractitionerRole", "id": f"prole-{pid[5:]}", "meta": meta("synthetic"),
                      "extension": [{"url": SD + "telehealth-service", "valueCoding": coding("telehealth-service", x)}
                                    for x in services],
                      "active": True, "practitioner": {"reference": f"Practitioner/{pid}"},
                      "organization": {"reference": f"Organization/{org_id}"},
                      "code": [{"coding": [{"system": HL7_ROLE, "code": "doctor", "display": "Doctor"}]}],
                      "specialty": [cc("specialty", spec)]})

    DISP["qualification"].update({"BS": "Bác sĩ", "TS-BS": "Tiến sĩ, bác sĩ (TS.BS)", "BSCK1":
                                  "Bác sĩ chuyên khoa cấp I (BS CK I)"})
    doctor("prac-bm-tran-minh-khoa", "Trần Minh Khoa", "TS-BS", "org-bach-mai", "neurology",
           ["examination", "consultation", "consultation-general"])
    doctor("prac-bm-pham-thu-ha", "Phạm Thu Hà", "THS-BS", "org-bach-mai", "gastroenterology",
           ["examination", "consultation-general"])
    doctor("prac-kt-nguyen-van-hung", "Nguyễn Văn Hưng", "BSCK1", "org-bvdk-tinh-kon-tum", "neurology",
           ["advice", "examination", "consultation-general"])
    doctor("prac-kt-y-lien", "Y Liên", "BS", "org-tyt-dak-pek", "neurology", ["advice"])
    patients: list[Res] = []
    for n in range(20):
        kon_tum = n >= 10
        gender = "female" if n % 2 else "male"
        birth = f"{rnd.randint(1940, 2005)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        if n == 19:
            birth = "2023-04-10"  # a child under 72 months in December 2026
        if kon_tum:
            eth = rnd.choice(["13", "14", "10", "27", "01"])
            family = "A" if gender == "male" else "Y"
            full = rnd.choice(KT_GIVEN[gender]) if eth != "01" else \
                f"{rnd.choice(FAMILY)} {rnd.choice(MIDDLE[gender])} {rnd.choice(GIVEN[gender])}"
            family = full.split()[0]
            province, place, card_prov = "51", "062", "62"
        else:
            eth = rnd.choice(["01", "01", "01", "02"])
            full = f"{rnd.choice(FAMILY)} {rnd.choice(MIDDLE[gender])} {rnd.choice(GIVEN[gender])}"
            family = full.split()[0]
            province, place, card_prov = "75", "075", "75"
        parts = full.split()
        pid = f"pat-{n + 1:03d}-{slug(full)}"
        patients.append({
            "resourceType": "Patient", "id": pid, "meta": meta("synthetic"),
            "extension": [{"url": f"{MOH}/StructureDefinition/extension-race",
                           "valueCodeableConcept": cc("ethnicity", eth)}],
            "identifier": [
                {"use": "official", "system": MOH_SID + "national_id",
                 "value": cccd(place, gender, birth, rnd.randint(1, 999999))},
                {"system": MOH_SID + "insurance_number",
                 "value": f"{'TE' if n == 19 else rnd.choice(['GD', 'HN', 'DN'])}{rnd.randint(1, 5)}{card_prov}"
                          f"{rnd.randint(0, 9999999999):010d}"},
            ],
            "active": True,
            "name": [{"use": "official", "text": full, "family": family, "given": parts[1:] or [family]}],
            "gender": gender, "birthDate": birth,
            "address": [dict(address(province, text="Địa chỉ giả lập (fictional address)"), use="home")],
        })
    out["07-synthetic-staff-patients.json"] = put(staff + patients)

    # -------- 08: Kon Tum facility schedule, appointments, encounters, prescriptions, minutes
    res: list[Res] = []
    res.append({"resourceType": "Schedule", "id": "sched-bvdk-tinh-kon-tum-tele", "meta": meta("synthetic"),
                "active": True, "serviceType": [cc("telehealth-service", "consultation-general"),
                                                cc("telehealth-service", "examination")],
                "actor": [{"reference": "Organization/org-bvdk-tinh-kon-tum"},
                          {"reference": "Location/loc-vr-bvdk-tinh-kon-tum"}],
                "planningHorizon": {"start": f"2026-11-30T00:00:00{TZ}", "end": f"2026-12-13T23:59:59{TZ}"},
                "comment": "Lịch hội chẩn, khám từ xa công khai của BVĐK tỉnh Kon Tum (giả lập)"})
    kt_patients: list[Res] = patients[10:]
    for i, p in enumerate(kt_patients[:6]):
        day = f"2026-12-{1 + i:02d}"
        slot_id = f"slot-bvdk-tinh-kon-tum-{day.replace('-', '')}-1400"
        kind = "consultation-general" if i % 2 else "examination"
        start, end = f"{day}T14:00:00{TZ}", f"{day}T14:30:00{TZ}"
        res.append({"resourceType": "Slot", "id": slot_id, "meta": meta("synthetic"),
                    "serviceType": [cc("telehealth-service", kind)],
                    "appointmentType": {"coding": [coding("telehealth-urgency", "scheduled")]},
                    "schedule": {"reference": "Schedule/sched-bvdk-tinh-kon-tum-tele"},
                    "status": "busy", "start": start, "end": end})
        icd, disp = TREATED[i % len(TREATED)]
        reason = [{"coding": [{"system": ICD10, "code": icd, "display": disp}]}]
        station = "org-tyt-dak-pek"
        aid = f"appt-{p['id'][4:]}"
        res.append({
            "resourceType": "Appointment", "id": aid, "meta": meta("synthetic"),
            "extension": [{"url": SD + "requesting-organization", "valueReference": {"reference":
                                                                                    f"Organization/{station}"}},
                          {"url": SD + "virtual-service-address",
                           "valueUrl": "https://telehealth.example.org/rooms/bvdk-tinh-kon-tum"}],
            "status": "fulfilled" if i < 4 else "booked",
            "serviceType": [cc("telehealth-service", kind)],
            "appointmentType": {"coding": [coding("telehealth-urgency", "scheduled")]},
            "reasonCode": reason, "start": start, "end": end, "slot": [{"reference": f"Slot/{slot_id}"}],
            "created": "2026-11-28",
            "participant": [
                {"actor": {"reference": f"Patient/{p['id']}"}, "required": "required", "status": "accepted"},
                {"actor": {"reference": "PractitionerRole/prole-kt-y-lien"}, "required": "required",
                 "status": "accepted"},
                {"actor": {"reference": "PractitionerRole/prole-kt-nguyen-van-hung"}, "required": "required",
                 "status": "accepted"},
                {"actor": {"reference": "Location/loc-vr-bvdk-tinh-kon-tum"}, "status": "accepted"}],
        })
        if i < 4:
            res.append({
                "resourceType": "Encounter", "id": f"enc-{p['id'][4:]}", "meta": meta("synthetic"),
                "extension": [{"url": SD + "requesting-organization",
                               "valueReference": {"reference": f"Organization/{station}"}}],
                "status": "finished",
                "class": {"system": V3_ACT, "code": "VR", "display": "virtual"},
                "type": [cc("telehealth-service", kind)],
                "subject": {"reference": f"Patient/{p['id']}"},
                "participant": [
                    {"type": [{"coding": [{"system": PART_TYPE, "code": "REF", "display": "referrer"}]}],
                     "individual": {"reference": "PractitionerRole/prole-kt-y-lien"}},
                    {"type": [{"coding": [{"system": PART_TYPE, "code": "CON", "display": "consultant"}]}],
                     "individual": {"reference": "PractitionerRole/prole-kt-nguyen-van-hung"}}],
                "appointment": [{"reference": f"Appointment/{aid}"}],
                "period": {"start": start, "end": end}, "reasonCode": reason,
                "serviceProvider": {"reference": "Organization/org-bvdk-tinh-kon-tum"},
            })
    # Remote examinations by Bạch Mai for TTYT Cẩm Mỹ (registered with Bạch Mai in seed 001), with e-prescriptions.
    dn_patients = patients[:10]
    rx_patients = [*dn_patients[:4], patients[19]]
    for i, p in enumerate(rx_patients):
        child = p is patients[19]
        icd, disp = ("J00", "Viêm mũi họng cấp (cảm thường)") if child else TREATED[i % len(TREATED)]
        day = f"2026-12-{7 + i:02d}"
        eid = f"enc-bm-{p['id'][4:]}"
        reason = [{"coding": [{"system": ICD10, "code": icd, "display": disp}]}]
        res.append({
            "resourceType": "Encounter", "id": eid, "meta": meta("synthetic"),
            "extension": [{"url": SD + "requesting-organization",
                           "valueReference": {"reference": "Organization/org-ttyt-cam-my"}}],
            "status": "finished", "class": {"system": V3_ACT, "code": "VR", "display": "virtual"},
            "type": [cc("telehealth-service", "examination")], "subject": {"reference": f"Patient/{p['id']}"},
            "participant": [{"type": [{"coding": [{"system": PART_TYPE, "code": "PPRF",
                                                   "display": "primary performer"}]}],
                             "individual": {"reference": "PractitionerRole/prole-bm-tran-minh-khoa"}}],
            "period": {"start": f"{day}T09:00:00{TZ}", "end": f"{day}T09:20:00{TZ}"}, "reasonCode": reason,
            "serviceProvider": {"reference": "Organization/org-bach-mai"},
        })
        drug = ("Paracetamol 250 mg (gói bột)", "VD-00000-00") if child else \
            [("Amlodipin 5 mg", "VD-00001-00"), ("Metformin 500 mg", "VD-00002-00"),
             ("Glucosamin 500 mg", "VD-00003-00"), ("Loratadin 10 mg", "VD-00004-00")][i % 4]
        code = f"01001{''.join(rnd.choice('0123456789abcdefghijklmnopqrstuvwxyz') for _ in range(7))}-c"
        days = 5 if child else 30
        rx: Res = {
            "resourceType": "MedicationRequest", "id": f"rx-bm-{p['id'][4:]}", "meta": meta("synthetic"),
            "identifier": [{"system": PRESCRIPTION_SID, "value": code}],
            "status": "active", "intent": "order",
            "category": [cc("prescription-kind", "c")],
            "medicationCodeableConcept": {"coding": [{"system": DRUG_REG, "code": drug[1]}],
                                          "text": drug[0] + " (thuốc giả lập / fictional registration number)"},
            "subject": {"reference": f"Patient/{p['id']}"}, "encounter": {"reference": f"Encounter/{eid}"},
            "authoredOn": f"{day}T09:20:00{TZ}",
            "requester": {"reference": "PractitionerRole/prole-bm-tran-minh-khoa"},
            "reasonCode": reason,
            "dosageInstruction": [{"text": "Ngày uống 1 lần, mỗi lần 1 viên, sau ăn sáng",
                                   "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "route": {"coding": [{"system": SNOMED, "code": "26643006",
                                                         "display": "Oral route"}], "text": "Uống"},
                                   "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "viên"}}]}],
            "dispenseRequest": {"quantity": {"value": days, "unit": "viên"},
                                "expectedSupplyDuration": {"value": days, "unit": "ngày", "system": UCUM,
                                                           "code": "d"}},
        }
        if child:
            rx["extension"] = [{"url": SD + "patient-weight",
                                "valueQuantity": {"value": 14.5, "unit": "kg", "system": UCUM, "code": "kg"}},
                               {"url": SD + "accompanying-adult", "valueString": "Mẹ: Hồ Thị Người Nhà (giả lập)"}]
        res.append(rx)
    # Consultation minutes (contract C) of the first Kon Tum teleconsultation.
    p = kt_patients[1]
    res.append({"resourceType": "Condition", "id": f"cond-{p['id'][4:]}", "meta": meta("synthetic"),
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                               "code": "active"}]},
                "code": {"coding": [{"system": ICD10, "code": TREATED[1][0], "display": TREATED[1][1]}]},
                "subject": {"reference": f"Patient/{p['id']}"},
                "encounter": {"reference": f"Encounter/enc-{p['id'][4:]}"}})

    def section(code: str, text: str, entry: list[Res] | None = None) -> Res:
        sec: Res = {"title": DISP["consultation-minutes-section"][code],
                    "code": {"coding": [coding("consultation-minutes-section", code)]},
                    "text": {"status": "generated",
                             "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{text}</p></div>'}}
        if entry:
            sec["entry"] = entry
        return sec

    def attester(prac: str, role: str) -> Res:
        return {"extension": [{"url": SD + "consultation-role",
                               "valueCoding": coding("consultation-participant-role", role)}],
                "mode": "legal" if role == "chair" else "professional", "time": f"2026-12-02T15:00:00{TZ}",
                "party": {"reference": f"Practitioner/{prac}"}}

    res.append({
        "resourceType": "Composition", "id": f"minutes-{p['id'][4:]}", "meta": meta("synthetic"), "language": "vi",
        "extension": [{"url": SD + "requesting-organization",
                       "valueReference": {"reference": "Organization/org-tyt-dak-pek"}}],
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}],
                 "text": "Biên bản hội chẩn từ xa"},
        "category": [{"coding": [coding("telehealth-service", "consultation-general")]}],
        "subject": {"reference": f"Patient/{p['id']}"}, "encounter": {"reference": f"Encounter/enc-{p['id'][4:]}"},
        "date": f"2026-12-02T15:00:00{TZ}",
        "author": [{"reference": "PractitionerRole/prole-kt-nguyen-van-hung"}],
        "title": "Biên bản hội chẩn từ xa (giả lập)",
        "attester": [attester("prac-kt-nguyen-van-hung", "chair"), attester("prac-kt-y-lien", "secretary")],
        "custodian": {"reference": "Organization/org-bvdk-tinh-kon-tum"},
        "section": [section("case-summary", "Người bệnh đến trạm y tế vì khát nhiều, tiểu nhiều (giả lập)."),
                    section("discussion", "Trao đổi kết quả đường huyết mao mạch (giả lập)."),
                    section("conclusion", "Đái tháo đường týp 2 không có biến chứng.",
                            [{"reference": f"Condition/cond-{p['id'][4:]}"}]),
                    section("treatment-plan", "Điều trị ngoại trú, tái khám từ xa sau 1 tháng (giả lập).")],
    })
    out["08-synthetic-visits-prescriptions.json"] = put(res)
    return out


def main() -> None:
    for name, bundle in build().items():
        (OUT / name).write_text(json.dumps(bundle, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"{name}: {len(bundle['entry'])} resources")


if __name__ == "__main__":
    main()
