"""The monthly report as files: CSV for spreadsheets, a self-contained Turkish HTML page.

``run_report`` is what ``intake report --month YYYY-MM`` calls: it writes
``rapor-YYYY-MM.csv`` and ``rapor-YYYY-MM.html`` into a directory. The CSV is UTF-8 with a
byte-order mark (so spreadsheet programs read the Turkish letters right), comma separated,
decimal point; cells that a spreadsheet would take for a formula are quoted with ``'``.
The HTML page has no external assets and every value in it is HTML-escaped.
"""

from __future__ import annotations

import csv
import html
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sinks.store.report import ISTANBUL, MonthlyReport, OutcomeSource, ReportLine, build_report

__all__ = ["report_paths", "run_report", "to_csv", "to_html"]

CSV_HEADER = (
    "bölüm",
    "kod",
    "ad",
    "alınan",
    "yanıtlanan",
    "zamanında",
    "geç",
    "açık",
    "süresi_geçmiş_açık",
    "yanıtsız_kapanan",
    "medyan_yanıt_saat",
)
_COLUMNS = (
    "Alınan",
    "Yanıtlanan",
    "Zamanında",
    "Geç",
    "Açık",
    "Süresi geçmiş açık",
    "Yanıtsız kapanan",
    "Medyan yanıt süresi (saat)",
)
_DEFINITIONS = (
    ("Dönem", "Başvurunun alındığı takvim ayı, İstanbul saatiyle."),
    ("Alınan", "Bu ay alınan başvurular."),
    ("Yanıtlanan", "Bunlardan rapor anına kadar birimin yanıt verdiği başvurular."),
    ("Zamanında / Geç", "Yanıt, yasal sürenin son gününde ya da önce / sonra verildi."),
    ("Açık", "Henüz yanıtlanmamış ve kapanmamış başvurular."),
    ("Süresi geçmiş açık", "Açık başvurulardan süresi rapor anında dolmuş olanlar."),
    ("Yanıtsız kapanan", "Birim yanıtı olmadan kapanan ya da bilgilendirmeyle biten başvurular."),
    ("Medyan yanıt süresi", "Alınıştan yanıta geçen sürenin ortancası, saat olarak."),
)
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin-top: .5rem; }
th, td { border: 1px solid #c8c8c8; padding: .3rem .6rem; }
th { background: #eef2f6; text-align: left; } td.n { text-align: right; }
tfoot td { font-weight: bold; background: #f6f6f6; }
.meta { color: #555; } dl { font-size: .9rem; } dt { font-weight: bold; }
"""
_SPREADSHEET_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def report_paths(month: str, out_dir: Path) -> tuple[Path, Path]:
    """Where :func:`run_report` writes the month's CSV and HTML files."""
    return out_dir / f"rapor-{month}.csv", out_dir / f"rapor-{month}.html"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_SPREADSHEET_FORMULA_START) else text


def _sections(report: MonthlyReport) -> Iterator[tuple[str, ReportLine]]:
    yield "toplam", report.total
    for section, lines in (
        ("birim", report.by_unit),
        ("kanal", report.by_channel),
        ("tür", report.by_type),
    ):
        for line in lines:
            yield section, line


def _numbers(line: ReportLine) -> tuple[int | float | None, ...]:
    return (
        line.received,
        line.answered,
        line.on_time,
        line.late,
        line.open,
        line.open_past_due,
        line.finished_without_answer,
        line.median_hours,
    )


def to_csv(report: MonthlyReport, path: Path) -> Path:
    """Write the report as CSV: one row per line, the total first, then each breakdown."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for section, line in _sections(report):
        writer.writerow([_csv_cell(v) for v in (section, line.key, line.label, *_numbers(line))])
    _write_atomically(path, buffer.getvalue().encode("utf-8-sig"))
    return path


def _format_number(value: int | float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}".replace(".", ",")  # Turkish decimal comma
    return f"{value:,}".replace(",", ".")  # Turkish thousands separator


def _local(moment: datetime) -> str:
    return moment.astimezone(ISTANBUL).strftime("%d.%m.%Y %H:%M")


def _row(line: ReportLine, cell: str = "td") -> str:
    e = html.escape
    numbers = "".join(f'<{cell} class="n">{e(_format_number(v))}</{cell}>' for v in _numbers(line))
    return f'<tr><{cell} title="{e(line.key)}">{e(line.label)}</{cell}>{numbers}</tr>'


def _table(heading: str, first_column: str, lines: Sequence[ReportLine], total: ReportLine) -> str:
    e = html.escape
    head = "".join(f"<th>{e(name)}</th>" for name in (first_column, *_COLUMNS))
    body = "\n".join(_row(line) for line in lines)
    if not lines:
        body = f'<tr><td colspan="{len(_COLUMNS) + 1}">Bu ay başvuru yok.</td></tr>'
    return (
        f"<h2>{e(heading)}</h2>\n<table>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n<tfoot>{_row(total)}</tfoot>\n</table>"
    )


def to_html(report: MonthlyReport, path: Path) -> Path:
    """Write the report as one readable, self-contained HTML page in Turkish."""
    e = html.escape
    last_day = report.end.astimezone(ISTANBUL) - timedelta(days=1)
    period = f"{report.start.astimezone(ISTANBUL):%d.%m.%Y} – {last_day:%d.%m.%Y}"
    definitions = "\n".join(f"<dt>{e(term)}</dt><dd>{e(text)}</dd>" for term, text in _DEFINITIONS)
    page = f"""<!DOCTYPE html>
<html lang="tr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(report.title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{e(report.title)}</h1>
<p class="meta">Dönem: {e(period)} (İstanbul saati) · Oluşturulma: {e(_local(report.generated_at))}
· Toplam {e(_format_number(report.total.received))} başvuru</p>
{_table("Birimlere göre", "Birim", report.by_unit, report.total)}
{_table("Kanallara göre", "Kanal", report.by_channel, report.total)}
{_table("Başvuru türlerine göre", "Tür", report.by_type, report.total)}
<h2>Tanımlar</h2>
<dl>
{definitions}
</dl>
</body>
</html>
"""
    _write_atomically(path, page.encode("utf-8"))
    return path


def run_report(store: OutcomeSource, month: str, out_dir: Path, now: datetime) -> tuple[Path, Path]:
    """Build the month's report as of ``now`` and write ``rapor-YYYY-MM.csv`` and ``.html``."""
    report = build_report(store, month, now)
    csv_path, html_path = report_paths(report.month, out_dir)
    return to_csv(report, csv_path), to_html(report, html_path)
