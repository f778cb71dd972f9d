"""Reports (`report`) and the retention job (`retention`, registered on the root app)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from facewarden.cli.common import open_service, print_json, reported
from facewarden.service import LOCAL_ADMIN

report_app = typer.Typer(help="Reports: law-enforcement transparency, GDPR Art. 30 record.", no_args_is_help=True)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    with reported():  # a missing folder or no write permission: one line, exit 2
        out.write_text(text, encoding="utf-8")
    typer.echo(f"written to {out}")


@report_app.command("transparency")
def report_transparency(
    since: Annotated[datetime, typer.Option(help="Start of the period, inclusive (e.g. 2026-01-01)")],
    until: Annotated[datetime, typer.Option(help="End of the period, exclusive (e.g. 2026-04-01)")],
    tenant: Annotated[str | None, typer.Option(help="Administering tenant (default: every one)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, csv or html")] = "json",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
) -> None:
    """Law-enforcement requests, searches and leads per requesting agency (Utah 77-23e-106, Mass. c.6 §220)."""
    from facewarden.governance import report_render

    renderers = {"json": lambda r: json.dumps(r, indent=2) + "\n", "csv": report_render.report_csv,
                 "html": report_render.report_html}
    if fmt not in renderers:
        raise typer.BadParameter("--format must be json, csv or html")
    with reported():
        report = open_service().reports.transparency(LOCAL_ADMIN, since=since, until=until, tenant_id=tenant)
    _emit(renderers[fmt](report), out)


@report_app.command("processing-record")
def report_processing_record(
    tenant: Annotated[str | None, typer.Option(help="One tenant (default: every one)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or html")] = "json",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
) -> None:
    """The GDPR Art. 30 record of processing activities, from the live database and settings."""
    from facewarden.governance import report_render

    with reported():
        record = open_service().reports.processing_record(LOCAL_ADMIN, tenant_id=tenant)
    _emit(report_render.processing_record_html(record) if fmt == "html" else json.dumps(record, indent=2) + "\n",
          out)


def retention() -> None:
    """Run the retention job now: destroy templates past their consent term, purpose or retention period."""
    with reported():
        print_json(open_service().retention.run(LOCAL_ADMIN))
