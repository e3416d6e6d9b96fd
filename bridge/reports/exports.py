"""The callback log's files, of exactly what is filtered: CSV (UTF-8 with a BOM, so Excel on a
Chinese Windows opens it) and XLSX (XlsxWriter in constant-memory mode: each row is written out as
it comes; real Excel dates in the site's zone; Chinese headers; set column widths).

Both read the rows ``CHUNK`` at a time (:func:`bridge.reports.callback_log.rows`); the CSV streams
as it is written, the XLSX is written to a temporary file (a workbook is a zip, finished at its end)
and streamed from it.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.db.engine import Database
from bridge.i18n import translations
from bridge.reports.callback_log import LogFilter, LogRow, rows
from bridge.reports.labels import GRADE_LABELS, OUTCOME_LABELS, attempts_text

BOM = "\ufeff"
EXPORT_LOCALE = "zh_CN"  # the files are handed on to the city's offices: Chinese headers and words


def local_naive(zone: ZoneInfo) -> Callable[[datetime | None], datetime | None]:
    """A UTC time as a naive site-zone time (Excel keeps no zone)."""
    return lambda moment: moment.astimezone(zone).replace(tzinfo=None) if moment is not None else None


# (header, width, kind, value of a row): kind "date" cells are Excel dates, "number" numbers
def columns(zone: ZoneInfo):
    local = local_naive(zone)
    _ = translations(EXPORT_LOCALE).gettext

    def text_time(moment):
        return local(moment).strftime("%Y-%m-%d %H:%M") if moment is not None else ""

    def hours(row: LogRow):
        return round(row.answer_to_informed_s / 3600, 2) if row.answer_to_informed_s is not None else None

    return (
        ("案件编号", 14, "text", lambda r: r.number),
        ("标题", 30, "text", lambda r: r.title),
        ("登记人", 12, "text", lambda r: r.operator or ""),
        ("来电时间", 17, "date", lambda r: local(r.call_at)),
        ("登记时间", 17, "date", lambda r: local(r.filed_at)),
        ("发帖时间", 17, "date", lambda r: local(r.posted_at)),
        ("受理时间", 17, "date", lambda r: local(r.accepted_at)),
        ("转办次数", 8, "number", lambda r: int(r.forwards)),
        ("转办单位", 30, "text", lambda r: "→".join(r.forwarded_to)),
        ("当前单位", 20, "text", lambda r: r.unit),
        ("答复时间", 17, "date", lambda r: local(r.answered_at)),
        ("回访次数", 8, "number", lambda r: len(r.attempts)),
        ("回访记录", 50, "text", lambda r: attempts_text(r.attempts, text_time, _)),
        ("回访结果", 12, "text", lambda r: _(OUTCOME_LABELS[r.outcome])),
        ("告知时间", 17, "date", lambda r: local(r.informed_at)),
        ("答复至告知（小时）", 12, "number", hours),
        ("满意度", 10, "text", lambda r: _(GRADE_LABELS[r.satisfaction]) if r.satisfaction else ""),
    )


def csv_chunks(db: Database, flt: LogFilter, zone: ZoneInfo, now: datetime) -> Iterator[bytes]:
    """The CSV file, a few hundred rows per chunk (starts with the BOM)."""
    with db.session(readonly=True) as session:
        yield from csv_file(columns(zone), rows(session, flt, zone, now))


def csv_file(cols, records: Iterable) -> Iterator[bytes]:
    """``records`` as CSV in ``cols`` (header, width, kind, value of a record): the BOM and the
    header first, then a chunk every 200 rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(BOM)
    writer.writerow([c[0] for c in cols])
    for count, record in enumerate(records, start=1):
        writer.writerow([_csv_value(kind, value(record)) for _h, _w, kind, value in cols])
        if count % 200 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _csv_value(kind: str, value):
    if value is None:
        return ""
    if kind == "date":
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def write_xlsx(db: Database, flt: LogFilter, zone: ZoneInfo, now: datetime) -> str:
    """The workbook, written to a temporary file (its path; the caller removes it)."""
    import xlsxwriter

    handle, path = tempfile.mkstemp(prefix="callback-log-", suffix=".xlsx")
    os.close(handle)
    cols = columns(zone)
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "remove_timezone": True})
    try:
        sheet = book.add_worksheet("回访记录")
        header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        for index, (title, width, _kind, _value) in enumerate(cols):
            sheet.set_column(index, index, width)
            sheet.write_string(0, index, title, header)
        sheet.freeze_panes(1, 0)
        with db.session(readonly=True) as session:
            for number, row in enumerate(rows(session, flt, zone, now), start=1):
                for index, (_title, _width, kind, value) in enumerate(cols):
                    cell = value(row)
                    if cell is None or cell == "":
                        continue
                    if kind == "date":
                        sheet.write_datetime(number, index, cell, when)
                    elif kind == "number":
                        sheet.write_number(number, index, cell)
                    else:
                        sheet.write_string(number, index, str(cell))
    finally:
        book.close()
    return path


def file_chunks(path: str, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes in chunks, removed once read (or abandoned)."""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(size):
                yield chunk
    finally:
        os.unlink(path)
