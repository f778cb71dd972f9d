"""Reports: the law-enforcement transparency report and the GDPR Art. 30 record, as JSON, CSV or HTML."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from facewarden.api.deps import Caller, Service
from facewarden.api.errors import ERROR_RESPONSES
from facewarden.api.schemas import ProcessingRecord, TransparencyReport
from facewarden.governance.report_render import processing_record_html, report_csv, report_html

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=ERROR_RESPONSES)

# The pages carry their own inline styles and nothing else: no scripts, no outside resources.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
CSV = {"text/csv": {"schema": {"type": "string"}}}
HTML = {"text/html": {"schema": {"type": "string"}}}


@router.get("/transparency", response_model=TransparencyReport,
            responses={200: {"content": {**CSV, **HTML}, "description": "JSON, or CSV or HTML with `format`"}})
def transparency(who: Caller, service: Service, since: datetime, until: datetime,
                 fmt: Annotated[Literal["json", "csv", "html"], Query(alias="format")] = "json",
                 ) -> dict[str, Any] | Response:
    """Counts per requesting agency for [since, until) against your tenant's databases; no personal data."""
    report = service.reports.transparency(who, since=since, until=until)
    if fmt == "csv":
        return PlainTextResponse(report_csv(report), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="transparency.csv"'})
    if fmt == "html":
        return HTMLResponse(report_html(report), headers=PAGE_HEADERS)
    return report


@router.get("/processing-record", response_model=ProcessingRecord,
            responses={200: {"content": HTML, "description": "JSON, or HTML with `format`"}})
def processing_record(who: Caller, service: Service,
                      fmt: Annotated[Literal["json", "html"], Query(alias="format")] = "json",
                      ) -> dict[str, Any] | Response:
    """The GDPR Art. 30 record of processing activities, generated from the live configuration."""
    record = service.reports.processing_record(who)
    if fmt == "html":
        return HTMLResponse(processing_record_html(record), headers=PAGE_HEADERS)
    return record
