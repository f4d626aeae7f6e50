"""The regulators' dashboard at /dashboard/ (CONTRACTS.md B): server-rendered HTML, inline SVG.

No authorization logic here: the `fhir_access_token` cookie becomes an `Authorization:
Bearer` header on a FhirRequest for `$telehealth-report`, dispatched through
`FhirService.dispatch` (the choke point). 401 → /auth/login?next=…, 403 → refusal page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, current_app, redirect, request

from fhir_server.errors import FhirError, Forbidden, NotAuthenticated
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.reports import svg
from fhir_server.reports.definitions import ROOT
from fhir_server.reports.period import parse_period

COOKIE = "fhir_access_token"
TREND_MEASURES = ("kt-04-advice", "kt-05-examination", "kt-10-consultation-upper-tier", "kt-11-consultation-commune")
CHART_MEASURE = "kt-05-examination"

STYLE = """
body{font-family:system-ui,'Segoe UI',Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px} h2{font-size:17px;margin-top:28px} table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #bbb;padding:4px 8px;vertical-align:top} th{background:#eef3f8;text-align:left}
td.num{text-align:right} form{background:#f6f8fa;padding:10px;border:1px solid #ddd}
.en{color:#666;font-size:90%} a.button{display:inline-block;margin-right:12px;padding:4px 10px;
border:1px solid #1f77b4;border-radius:3px;text-decoration:none;color:#1f77b4}
"""


def _provinces() -> list[tuple[str, str]]:
    data = json.loads((ROOT / "terminology" / "CodeSystem-province.json").read_text(encoding="utf-8"))
    return sorted((c["code"], c["display"]) for c in data.get("concept", []))


def _previous_quarter(now: datetime) -> str:
    q = (now.month - 1) // 3 + 1
    return f"{now.year - 1}-Q4" if q == 1 else f"{now.year}-Q{q - 1}"


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def _refusal(exc: FhirError) -> Response:
    issue = exc.issues[0] if exc.issues else None
    detail = f"<p>{escape(issue.vi)}</p><p class='en'>{escape(issue.en)}</p>" if issue else ""
    return _page("Không có quyền truy cập / Access denied",
                 "<h1>Không có quyền truy cập <span class='en'>/ Access denied</span></h1>"
                 "<p>Bảng điều khiển báo cáo chỉ dành cho cơ quan quản lý (Sở Y tế, Bộ Y tế).</p>"
                 "<p class='en'>The report dashboard is for regulators (Departments and Ministry of Health) "
                 f"only.</p>{detail}", status=403)


def _error(exc: FhirError) -> Response:
    issue = exc.issues[0]
    return _page("Lỗi / Error", f"<h1>Yêu cầu không hợp lệ <span class='en'>/ Bad request</span></h1>"
                 f"<p>{escape(issue.vi)}</p><p class='en'>{escape(issue.en)}</p>"
                 "<p><a href='/dashboard/'>Quay lại / back</a></p>", status=exc.status)


def _dispatch(params: list[tuple[str, str]]) -> FhirResponse:
    svc = current_app.extensions["fhir_service"]
    headers = {}
    token = request.cookies.get(COOKIE)
    if token:
        headers["authorization"] = f"Bearer {token}"
    base = request.host_url.rstrip("/") + svc.settings.base_path
    req = FhirRequest(method="GET", operation="$telehealth-report", params=params, headers=headers, base_url=base,
                      lang="vi", source_address=request.remote_addr)
    resp: FhirResponse = svc.dispatch(req)
    return resp


def _reports(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["measure"].rsplit("/", 1)[-1]: e["resource"] for e in bundle.get("entry", [])}


def _jurisdiction(reports: dict[str, dict[str, Any]]) -> str | None:
    for rep in reports.values():
        for ext in rep.get("extension", []):
            if ext["url"].endswith("/report-jurisdiction"):
                return str(ext["valueCoding"]["code"])
    return None


def _value(group: dict[str, Any]) -> float:
    if "measureScore" in group:
        return float(group["measureScore"]["value"])
    pops = group.get("population", [])
    return float(pops[0]["count"]) if pops else 0.0


def _strata(report: dict[str, Any]) -> list[tuple[str, float]]:
    group = report["group"][0]
    return [(s["value"]["text"], _value(s)) for st in group.get("stratifier", []) for s in st["stratum"]]


def _table(bundle: dict[str, Any], measures: dict[str, dict[str, Any]]) -> str:
    rows = ["<table id='indicators'><tr><th>TT</th><th>Nội dung <span class='en'>/ indicator</span></th>"
            "<th>Nhóm số liệu</th><th>Giá trị <span class='en'>/ value</span></th></tr>"]
    for entry in bundle.get("entry", []):
        rep = entry["resource"]
        mid = rep["measure"].rsplit("/", 1)[-1]
        m = measures.get(mid, {})
        row = next((e["valueString"] for e in m.get("extension", []) if e["url"].endswith("/report-row")), "")
        for i, g in enumerate(rep["group"]):
            v = _value(g)
            shown = "" if ("measureScore" not in g and g["code"]["coding"][0]["code"] in ("cost", "rate")) else (
                f"{v:,.0f}".replace(",", ".") if float(v).is_integer() else f"{v:,.3f}")
            title = (f"{escape(m.get('title', mid))}<br><span class='en'>{escape(m.get('subtitle', ''))}</span>"
                     if i == 0 else "")
            rows.append(f"<tr data-measure='{escape(mid)}' data-group='{escape(g['code']['coding'][0]['code'])}'>"
                        f"<td>{escape(row) if i == 0 else ''}</td><td>{title}</td><td>{escape(g['code']['text'])}"
                        f"</td><td class='num'>{shown}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def make_blueprint() -> Blueprint:
    bp = Blueprint("reports_dashboard", __name__, url_prefix="/dashboard")

    @bp.route("/", methods=["GET"], strict_slashes=False)
    def dashboard() -> Any:
        province = (request.args.get("province") or "").strip()
        period = (request.args.get("period") or "").strip() or _previous_quarter(datetime.now(UTC))
        scope = [("jurisdiction", province)] if province else []
        try:
            main = _dispatch([("period", period), ("breakdown", "facility"), *scope])
            upper = _dispatch([("period", period), ("breakdown", "upper-tier"), *scope])
            trend = _dispatch([("period", period[:4]), ("breakdown", "quarter"), *scope])
        except NotAuthenticated:
            return redirect("/auth/login?next=" + quote(request.full_path.rstrip("?"), safe=""))
        except Forbidden as exc:
            return _refusal(exc)
        except FhirError as exc:
            return _error(exc)
        from fhir_server.reports.definitions import load_indicators

        measures = {i.id: i.measure for i in load_indicators()}
        assert main.resource is not None and upper.resource is not None and trend.resource is not None
        by_facility = _reports(main.resource)
        by_upper = _reports(upper.resource)
        by_quarter = _reports(trend.resource)
        province = province or _jurisdiction(by_facility) or ""
        options = "".join(f"<option value='{c}'{' selected' if c == province else ''}>{c} – {escape(n)}</option>"
                          for c, n in _provinces())
        q = urlencode([("period", period), *([("province", province)] if province else [])])
        try:
            labels = [q.label for q in parse_period(period[:4], None, None).quarters()]
        except FhirError:
            labels = []
        series = []
        for mid in TREND_MEASURES:
            rep = by_quarter.get(mid)
            if rep is None:
                continue
            strata = dict(_strata(rep))
            row = next((e["valueString"] for e in measures[mid].get("extension", [])
                        if e["url"].endswith("/report-row")), "")
            series.append((f"{row}. {measures[mid]['subtitle']}", [strata.get(label, 0.0) for label in labels]))
        chart_title = measures[CHART_MEASURE]["title"]
        body = f"""
<h1>Báo cáo khám, chữa bệnh từ xa <span class='en'>/ Telehealth activity report</span></h1>
<form method="get" action="/dashboard/">
 <label>Tỉnh/thành phố <span class='en'>province</span>
  <select name="province" id="province"><option value="">Toàn quốc / national</option>{options}</select></label>
 <label>Kỳ báo cáo <span class='en'>period</span>
  <input name="period" id="period" value="{escape(period)}" size="10" placeholder="2024-Q2"></label>
 <button type="submit">Xem / show</button>
</form>
<p id="scope">Phạm vi <span class='en'>scope</span>: <b>{escape(province or 'toàn quốc / national')}</b>,
 kỳ <span class='en'>period</span>: <b>{escape(period)}</b></p>
<p><a class="button" id="download-xlsx" href="/dashboard/report.xlsx?{escape(q)}">Tải bảng tính (.xlsx)</a>
 <a class="button" id="download-csv" href="/dashboard/report.csv?{escape(q)}">CSV</a></p>
<h2>Chỉ số <span class='en'>/ indicators</span></h2>
{_table(main.resource, measures)}
<h2>Xu hướng theo quý <span class='en'>/ trend per quarter</span> ({escape(period[:4])})</h2>
{svg.trend_chart(labels, series, "Số lượt theo quý / sessions per quarter", "chart-trend")}
<h2>Theo cơ sở <span class='en'>/ by facility</span></h2>
{svg.bar_chart(_strata(by_facility[CHART_MEASURE]), chart_title + " — theo cơ sở", "chart-facility")}
<h2>Theo bệnh viện tuyến trên <span class='en'>/ by upper-tier hospital</span></h2>
{svg.bar_chart([kv for kv in _strata(by_upper['kt-10-consultation-upper-tier'])
                if not kv[0].startswith('Tự thực hiện')],
               "Hội chẩn với bệnh viện tuyến trên / consultations by upper-tier hospital", "chart-upper")}
"""
        return _page("Báo cáo KCB từ xa", body)

    def download(fmt: str) -> Any:
        province = (request.args.get("province") or "").strip()
        period = (request.args.get("period") or "").strip() or _previous_quarter(datetime.now(UTC))
        params = [("period", period), ("_format", fmt), *([("jurisdiction", province)] if province else [])]
        try:
            resp = _dispatch(params)
        except NotAuthenticated:
            return redirect("/auth/login?next=" + quote(request.full_path.rstrip("?"), safe=""))
        except Forbidden as exc:
            return _refusal(exc)
        except FhirError as exc:
            return _error(exc)
        return Response(resp.raw, status=200, headers=resp.headers, mimetype=resp.media_type)

    @bp.route("/report.xlsx", methods=["GET"])
    def report_xlsx() -> Any:
        return download("xlsx")

    @bp.route("/report.csv", methods=["GET"])
    def report_csv() -> Any:
        return download("csv")

    return bp
