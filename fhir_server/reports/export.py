"""The report as a table laid out like the Kon Tum appendix: CSV and XLSX (Vietnamese headings)."""

from __future__ import annotations

import csv
import io
from typing import Any

from fhir_server.reports.compute import IndicatorResult, Keys

TITLE = "CHỈ SỐ CHÍNH ĐỂ THEO DÕI, ĐÁNH GIÁ VIỆC THỰC HIỆN KẾ HOẠCH KHÁM CHỮA BỆNH TỪ XA"
GROUP_UNITS = {"eprescribed": "Lượt", "sessions": "Buổi", "upper-participants": "Người",
               "lower-participants": "Người", "cases": "Ca", "cost": "VND", "minutes": "Ca"}
HEADINGS = ["TT", "Nội dung", "Nhóm số liệu", "ĐVT", "Mã chỉ số (Measure)"]


def _number(v: float | int | None) -> float | int | str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def table(results: list[IndicatorResult], keys: Keys | None, period_label: str) -> list[list[Any]]:
    """Header row + one row per (indicator, group): total, then one column per stratum."""
    strata: list[str] = []
    for res in results:
        for g in res.groups:
            strata += [k for k in g.strata if k not in strata]
    strata.sort(key=lambda k: keys.label(k) if keys else k)
    header = [*HEADINGS, f"Kỳ {period_label}"] + [keys.label(k) if keys else k for k in strata]
    rows: list[list[Any]] = [header]
    for res in results:
        ind = res.indicator
        for i, g in enumerate(res.groups):
            unit = GROUP_UNITS.get(g.code) or ind.unit
            rows.append([ind.row if i == 0 else "",
                         ind.measure["title"] if i == 0 else "", g.text, unit, ind.id,
                         _number(g.total.display(g.code))]
                        + [_number(g.strata[k].display(g.code)) if k in g.strata else "" for k in strata])
    return rows


def to_csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 Vietnamese correctly


def to_xlsx(rows: list[list[Any]], scope_text: str, period_label: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Chỉ số KCB từ xa"
    ws.append([TITLE])
    ws.append([f"Phạm vi: {scope_text}"])
    ws.append([f"Kỳ báo cáo: {period_label}"])
    ws.append([])
    ws["A1"].font = Font(bold=True, size=13)
    for r in rows:
        ws.append(r)
    for cell in ws[5]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.column_dimensions["B"].width = 60
    ws.column_dimensions["C"].width = 32
    ws.column_dimensions["E"].width = 30
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


HEADER_ROW_XLSX = 5  # 1-based row of the heading row in the sheet
