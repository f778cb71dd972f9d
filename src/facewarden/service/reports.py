"""Reports for auditors and the public: the transparency report on police searches and the GDPR Art. 30
record. The store reads the facts, governance applies the rules; adapters render them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from facewarden.errors import InvalidInput
from facewarden.governance import report_rules, roles
from facewarden.governance.actors import Actor
from facewarden.service.context import ServiceContext
from facewarden.store import report_queries


class Reports:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def transparency(self, actor: Actor, *, since: datetime, until: datetime,
                     tenant_id: str | None = None) -> dict[str, Any]:
        """Police requests, searches and leads against the caller's databases, per requesting agency; no personal
        data. API callers get their own tenant; the local administrator names one or gets every one (None)."""
        ctx = self.ctx
        with ctx.audited(actor, "transparency_report", roles.AUDITOR, roles.ADMIN, roles.REVIEWER) as event:
            scope = actor.read_scope(tenant_id)
            try:
                with ctx.db.session(readonly=True) as s:
                    facts = report_queries.transparency_facts(s, scope, since, until)
                report = report_rules.transparency_report(facts, since, until)
            except ValueError as exc:
                raise InvalidInput(str(exc), code="invalid_period") from exc
            event.details = {**report["period"], "scope": scope or "*"}
            ctx.audit.record(event)
            return report

    def processing_record(self, actor: Actor, *, tenant_id: str | None = None) -> dict[str, Any]:
        """The GDPR Art. 30 record generated from the purposes and settings in force now."""
        ctx = self.ctx
        with ctx.audited(actor, "processing_record", roles.AUDITOR, roles.ADMIN) as event:
            scope = actor.read_scope(tenant_id)
            with ctx.db.session(readonly=True) as s:
                facts = report_queries.processing_facts(s, scope)
            record = report_rules.processing_record(facts, ctx.settings)
            event.details = {"scope": scope or "*", "activities": len(record["processing_activities"])}
            ctx.audit.record(event)
            return record
