"""Generator of terminology/measures/Measure-<id>.json (the indicators as data).

Run `python -m fhir_server.reports.build_measures` after editing the table below and commit
the JSON; the server reads only the JSON files. Each group's population carries its
computation in `criteria` (language `application/x-fhir-query`: see
fhir_server/reports/README.md "Computation keys").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir_server.reports.definitions import (
    CANONICAL,
    COMPUTATION_LANGUAGE,
    MEASURES_DIR,
    SEED_DN,
    SEED_KT,
    SOURCE_EXT,
)

KINDS_CONSULT = "consultation,consultation-general,consultation-imaging,consultation-laboratory,consultation-surgery"
ALL = f"advice,examination,{KINDS_CONSULT}"

# (id, row, vi title, en title, unit, source, [(group code, vi, en, criteria)], scoring, vi description, en description)
KT: list[tuple[str, str, str, str, str, list[tuple[str, str, str, str]], str, str, str]] = [
    ("kt-01-stations", "1", "Số trạm y tế triển khai tư vấn, KCB từ xa",
     "Commune health stations doing telehealth", "Trạm",
     [("count", "Số trạm", "Stations", f"stations?kind={ALL}")], "cohort",
     "Số trạm y tế xã (Organization tuyến xã) là cơ sở thực hiện hoặc cơ sở đề nghị của ít nhất một lượt tư vấn, "
     "khám chữa bệnh hoặc hội chẩn từ xa trong kỳ.",
     "Commune-tier organizations that performed or requested at least one telehealth encounter in the period."),
    ("kt-02-doctors", "2", "Số Bác sĩ tham gia tư vấn, KCB từ xa", "Doctors taking part in telehealth", "Người",
     [("count", "Số bác sĩ", "Doctors", f"doctors?kind={ALL}")], "cohort",
     "Số người hành nghề (Practitioner) khác nhau tham gia (Encounter.participant) các lượt từ xa trong kỳ. "
     "Phụ lục ghi dòng 2 và dòng 3 trùng nội dung; chỉ tính một chỉ số.",
     "Distinct practitioners in Encounter.participant of the period's telehealth encounters. Rows 2 and 3 of "
     "the appendix are identical; one indicator stands for both."),
    ("kt-04-advice", "4", "Số lượt tư vấn sức khỏe từ xa", "Remote health-advice sessions", "Lượt",
     [("count", "Số lượt", "Sessions", "cases?kind=advice")], "cohort",
     "Số Encounter lớp VR, loại advice trong kỳ.", "Encounters of class VR and type advice in the period."),
    ("kt-04-1-advice-local", "4.1",
     "Số lượt tư vấn sức khỏe từ xa do đơn vị (Trạm, PKĐKKV) tự thực hiện",
     "Remote health-advice sessions done by the unit (station, regional polyclinic) itself", "Lượt",
     [("count", "Số lượt", "Sessions", "cases?kind=advice&origin=local")], "cohort",
     "Lượt tư vấn không có cơ sở đề nghị (extension requesting-organization) hoặc cơ sở đề nghị trùng "
     "serviceProvider.", "Advice encounters without a requesting organization other than the serviceProvider."),
    ("kt-04-2-advice-referred", "4.2", "Số lượt tư vấn sức khỏe từ xa chuyển tuyến trên để tư vấn từ xa",
     "Remote health-advice sessions referred to the upper tier", "Lượt",
     [("count", "Số lượt", "Sessions", "cases?kind=advice&origin=referred")], "cohort",
     "Lượt tư vấn có cơ sở đề nghị (requesting-organization) khác serviceProvider (cơ sở tuyến trên thực hiện).",
     "Advice encounters whose requesting organization differs from the (upper-tier) serviceProvider."),
    ("kt-05-examination", "5", "Số lượt khám từ xa, kê đơn thuốc điện tử",
     "Remote examinations (with e-prescribing)", "Lượt",
     [("count", "Số lượt", "Examinations", "cases?kind=examination"),
      ("eprescribed", "Trong đó có kê đơn thuốc điện tử", "Of which with an e-prescription",
       "eprescribed?kind=examination")], "cohort",
     "Số Encounter lớp VR, loại examination trong kỳ; nhóm thứ hai: số lượt có ít nhất một MedicationRequest "
     "(encounter trỏ tới lượt khám, status khác cancelled/entered-in-error).",
     "Encounters of class VR and type examination; second group: those with at least one MedicationRequest "
     "pointing at them (status not cancelled/entered-in-error)."),
    ("kt-05-1-examination-local", "5.1", "Số lượt KCB từ xa do Trạm, PKĐKKV tự thực hiện",
     "Remote examinations done by the station / regional polyclinic itself", "Lượt",
     [("count", "Số lượt", "Examinations", "cases?kind=examination&origin=local"),
      ("eprescribed", "Trong đó có kê đơn thuốc điện tử", "Of which with an e-prescription",
       "eprescribed?kind=examination&origin=local")], "cohort",
     "Như dòng 5, chỉ các lượt không chuyển tuyến.", "As row 5, encounters not referred."),
    ("kt-05-2-examination-referred", "5.2", "Số lượt KCB từ xa chuyển tuyến trên để KCB từ xa",
     "Remote examinations referred to the upper tier", "Lượt",
     [("count", "Số lượt", "Examinations", "cases?kind=examination&origin=referred"),
      ("eprescribed", "Trong đó có kê đơn thuốc điện tử", "Of which with an e-prescription",
       "eprescribed?kind=examination&origin=referred")], "cohort",
     "Như dòng 5, chỉ các lượt chuyển tuyến trên.", "As row 5, referred encounters only."),
    ("kt-06-advice-per-population", "6", "Số lượt tư vấn sức khỏe từ xa/dân số",
     "Remote health-advice sessions per 1,000 population", "Lượt/1.000 dân",
     [("rate", "Lượt/1.000 dân", "Per 1,000 population", "rate?kind=advice")], "ratio",
     "Tử số: lượt tư vấn của các trạm y tế xã có số dân (bảng commune-population.csv); mẫu số: tổng dân số các "
     "xã đó; điểm = tử số × 1.000 / mẫu số.",
     "Numerator: advice encounters of commune stations with a population figure (commune-population.csv); "
     "denominator: their population; score = numerator × 1,000 / denominator."),
    ("kt-07-examination-per-population", "7", "Số lượt khám chữa bệnh từ xa/dân số",
     "Remote examinations per 1,000 population", "Lượt/1.000 dân",
     [("rate", "Lượt/1.000 dân", "Per 1,000 population", "rate?kind=examination")], "ratio",
     "Như dòng 6 với lượt khám chữa bệnh từ xa.", "As row 6 with remote examinations."),
    ("kt-09-app-install-support", "9",
     "Số lượt người dân từ 16 tuổi trở lên được hướng dẫn, hỗ trợ cài đặt phần mềm Vtelehealth",
     "People aged 16+ helped to install the Vtelehealth app", "Lượt",
     [("count", "Số lượt", "People helped", "reported")], "cohort",
     "Không suy ra được từ dữ liệu lâm sàng: là số liệu báo cáo (MeasureReport type data-collection, measure = "
     "chỉ số này, reporter = cơ sở, period nằm trong kỳ), cộng dồn. Phụ lục không có dòng 8.",
     "Not derivable from clinical data: reported data (MeasureReport of type data-collection for this measure, "
     "reporter = the facility, period inside the report period), summed. The appendix has no row 8."),
    ("kt-10-consultation-upper-tier", "10", "Số lượt hội chẩn từ xa với Bệnh viện tuyến trên",
     "Remote consultations with upper-tier hospitals", "Lượt",
     [("count", "Số lượt", "Consultations", f"cases?kind={KINDS_CONSULT}&origin=referred&requester-tier=other")],
     "cohort",
     "Encounter hội chẩn (consultation*) có cơ sở đề nghị không phải trạm y tế xã (TTYT huyện, bệnh viện) và "
     "serviceProvider khác cơ sở đề nghị.",
     "Consultation encounters requested by a facility that is not a commune station, performed by another "
     "(upper-tier) facility."),
    ("kt-11-consultation-commune", "11", "Số lượt hội chẩn từ xa với cơ sở tuyến xã",
     "Remote consultations with commune-level facilities", "Lượt",
     [("count", "Số lượt", "Consultations", f"cases?kind={KINDS_CONSULT}&origin=referred&requester-tier=commune")],
     "cohort",
     "Encounter hội chẩn có cơ sở đề nghị là trạm y tế xã (Organization tuyến xã).",
     "Consultation encounters requested by a commune-tier organization."),
]

DN_TABLES = [
    ("dn-2-advice", "C.2", "advice", "Tư vấn khám, chữa bệnh từ xa", "Remote advice"),
    ("dn-3-consultation", "C.3", "consultation,consultation-general", "Hội chẩn tư vấn khám, chữa bệnh từ xa",
     "General remote consultation"),
    ("dn-4-imaging", "C.4", "consultation-imaging", "Hội chẩn tư vấn chẩn đoán hình ảnh từ xa",
     "Remote imaging consultation"),
    ("dn-5-laboratory", "C.5", "consultation-laboratory", "Hội chẩn tư vấn xét nghiệm từ xa",
     "Remote laboratory consultation"),
    ("dn-6-surgery", "C.6", "consultation-surgery", "Hội chẩn tư vấn phẫu thuật từ xa",
     "Remote surgery consultation"),
]
DN_GROUPS = [
    ("sessions", "Số buổi", "Sessions", "sessions"),
    ("upper-participants", "Số người BV tuyến trên tham gia", "Upper-tier participants", "upper-participants"),
    ("lower-participants", "Số người BV tuyến dưới tham gia", "Lower-tier participants", "lower-participants"),
    ("cases", "Số ca bệnh", "Cases", "cases"),
    ("cost", "Tổng số kinh phí (VND)", "Total cost (VND)", "cost"),
]


def measure(mid: str, row: str, title_vi: str, title_en: str, unit: str, source: str,
            groups: list[tuple[str, str, str, str]], scoring: str, desc_vi: str, desc_en: str) -> dict[str, Any]:
    pop_code = {"ratio": None, "cohort": "initial-population"}
    out_groups = []
    for code, g_vi, g_en, criteria in groups:
        if scoring == "ratio":
            pops = [("numerator", f"{criteria}&part=numerator"), ("denominator", f"{criteria}&part=denominator")]
        else:
            pops = [(pop_code["cohort"] or "initial-population", criteria)]
        out_groups.append({
            "code": {"coding": [{"system": f"{CANONICAL}/CodeSystem/telehealth-report-group", "code": code}],
                     "text": g_vi},
            "description": f"{g_vi} / {g_en}",
            "population": [{
                "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population",
                                     "code": pcode}]},
                "criteria": {"language": COMPUTATION_LANGUAGE, "expression": expr,
                             "description": "Khoá tính toán / computation key: fhir_server/reports/README.md"},
            } for pcode, expr in pops],
        })
    return {
        "resourceType": "Measure",
        "id": mid,
        "url": f"{CANONICAL}/Measure/{mid}",
        "version": "2026.1",
        "name": mid.replace("-", "_").upper(),
        "title": title_vi,
        "subtitle": title_en,
        "status": "active",
        "experimental": False,
        "publisher": "vn-telehealth-fhir",
        "description": f"{desc_vi}\n\n{desc_en}\n\nNguồn / Source: {source}, dòng/row {row}.",
        "extension": [
            {"url": SOURCE_EXT, "valueString": f"{source}, dòng/row {row}"},
            {"url": f"{CANONICAL}/StructureDefinition/report-row", "valueString": row},
            {"url": f"{CANONICAL}/StructureDefinition/report-unit", "valueString": unit},
        ],
        "relatedArtifact": [{"type": "documentation", "display": source}],
        "scoring": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring",
                                "code": scoring}]},
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-type", "code": "structure"
                              if mid.endswith("stations") else "process"}]}],
        "improvementNotation": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation", "code": "increase"}]},
        "group": out_groups,
    }


def build() -> list[dict[str, Any]]:
    kt_src = (f"Sở Y tế tỉnh Kon Tum, Kế hoạch 2024, Phụ lục \"Chỉ số chính để theo dõi, đánh giá việc thực hiện "
              f"kế hoạch khám chữa bệnh từ xa\" (seed {SEED_KT})")
    out = [measure(m[0], m[1], m[2], m[3], m[4], kt_src, m[5], m[6], m[7], m[8]) for m in KT]
    dn_src = f"Sở Y tế tỉnh Đồng Nai, báo cáo 6 tháng 2020, mục C \"Kết quả thực hiện\" (seed {SEED_DN})"
    for mid, row, kinds, vi, en in DN_TABLES:
        groups = [(code, g_vi, g_en, f"{metric}?kind={kinds}") for code, g_vi, g_en, metric in DN_GROUPS]
        if kinds != "advice":
            groups.append(("minutes", "Trong đó có biên bản hội chẩn", "Of which with consultation minutes",
                           f"minutes?kind={kinds}"))
        out.append(measure(
            mid, row, vi, en, "Buổi / Người / Ca / VND", dn_src, groups, "cohort",
            f"Bảng {row}: số buổi, số người tuyến trên, tuyến dưới tham gia, số ca bệnh và tổng kinh phí của các "
            f"Encounter lớp VR loại {kinds}.",
            f"Table {row}: sessions, upper- and lower-tier participants, cases and total cost of VR encounters "
            f"of type {kinds}."))
    return out


def main() -> None:
    MEASURES_DIR.mkdir(parents=True, exist_ok=True)
    for m in build():
        path = MEASURES_DIR / f"Measure-{m['id']}.json"
        path.write_text(json.dumps(m, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(build())} measures to {MEASURES_DIR}")


if __name__ == "__main__":
    main()

__all__ = ["Path", "build"]
