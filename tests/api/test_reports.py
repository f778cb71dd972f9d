"""Transparency report and Art. 30 record, from rows written straight into a real SQLite and PostgreSQL schema."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from facewarden.config import Settings
from facewarden.governance import report_rules
from facewarden.governance.report_render import processing_record_html, report_csv, report_html
from facewarden.governance.report_rules import REPORT_COUNTS
from facewarden.store import report_queries
from facewarden.store.db import Database
from facewarden.store.models import (
    LeCandidate,
    LeSearch,
    Purpose,
    SearchGrant,
    SearchRequest,
    Subject,
    Tenant,
)
from tests.conftest import make_settings

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)  # one quarter, exclusive
HOSTILE = "<script>&<b>x"  # a tenant id a report must escape

# Personal data the rows carry and no report may: principals, case numbers, narratives, facts, names.
SECRETS = ("det.jones@police", "rev.smith@dmv", "CASE-2026-0042", "Suspect seen near the bank on Main Street",
           "armed robbery", "ORDER-77/2026", "Child missing since noon", "Reasonable and documented",
           "ext-subject-", "Alice Example")


def transparency_report(s: Session, scope: str | None, since: datetime, until: datetime) -> dict[str, Any]:
    """Read the facts, then apply the rules: what the service does."""
    return report_rules.transparency_report(report_queries.transparency_facts(s, scope, since, until), since, until)


def processing_record(s: Session, settings: Settings, tenant_id: str | None = None) -> dict[str, Any]:
    return report_rules.processing_record(report_queries.processing_facts(s, tenant_id), settings)


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path, backend: str | None) -> Iterator[Database]:
    database = Database(backend or f"sqlite:///{tmp_path}/db.sqlite")
    database.upgrade()
    yield database
    database.dispose()


class Script:
    """Writes law-enforcement rows the way the workflow would, and remembers every id it made."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.ids: list[str] = []

    def _id(self) -> str:
        new = str(uuid.uuid4())
        self.ids.append(new)
        return new

    def tenant(self, tenant_id: str, name: str | None = None) -> None:
        self.s.add(Tenant(id=tenant_id, name=name or f"Agency {tenant_id}", created_at=at(1, 1, 0) - timedelta(days=400)))
        self.s.flush()

    def request(self, admin: str, requester: str, created: datetime, status: str, *,
                decided: datetime | None = None, grant: bool = False, emergency_search: str | None = None) -> str:
        rid = self._id()
        self.s.add(SearchRequest(
            id=rid, administering_tenant=admin, requesting_tenant=requester, requested_by=f"det.jones@{requester}",
            case_number="CASE-2026-0042", offence="armed robbery", narrative="Suspect seen near the bank on Main Street",
            authorised_use="serious-crime", basis_kind="court-order", court_order_ref="ORDER-77/2026",
            emergency_facts=None, max_candidates=5, probe=b"\x00" * 16, emergency_search_id=emergency_search,
            status=status, decided_by="rev.smith@dmv" if status != "pending" else None,
            decision_reason="Reasonable and documented" if status != "pending" else None,
            decided_at=decided or (created + timedelta(hours=2) if status != "pending" else None), created_at=created))
        self.s.flush()
        if grant:
            self.s.add(SearchGrant(id=self._id(), request_id=rid, case_number="CASE-2026-0042", searches_allowed=3,
                                   searches_used=0, expires_at=created + timedelta(days=14), created_at=created))
            self.s.flush()
        return rid

    def search(self, admin: str, requester: str, created: datetime, *, request: str | None = None,
               emergency: bool = False, status: str = "leads", candidates: int = 0, confirmed: int = 0,
               half_confirmed: int = 0, confirmed_at: datetime | None = None) -> str:
        sid = self._id()
        self.s.add(LeSearch(
            id=sid, administering_tenant=admin, requesting_tenant=requester, request_id=request,
            run_by=f"det.jones@{requester}", case_number="CASE-2026-0042", emergency=emergency,
            emergency_facts="Child missing since noon" if emergency else None, status=status,
            candidates_returned=candidates, created_at=created))
        self.s.flush()
        for rank in range(candidates):
            done = rank < confirmed
            half = confirmed <= rank < confirmed + half_confirmed  # one reviewer only: not a confirmed lead
            self.s.add(LeCandidate(
                id=self._id(), search_id=sid, subject_id=self._id(), rank=rank + 1,
                first_confirmed_by="rev.smith@dmv" if done or half else None,
                second_confirmed_by="rev.other@dmv" if done else None,
                confirmed_at=(confirmed_at or created + timedelta(days=1)) if done else None))
        self.s.flush()
        return sid


def write_quarter(s: Session) -> Script:
    """The scripted quarter. Against "dmv":
    police-a: 3 requests (2 approved, one of them decided after the quarter; 1 denied); 3 searches returning 3, 1
              and 1 candidates, 1 candidate confirmed by two reviewers and 1 by one reviewer only.
    police-b: 1 emergency search followed by a (pending) written request, 1 emergency search flagged.
    Outside the count: rows just before and exactly at the end of the quarter, a search outside the quarter whose
    candidate was confirmed inside it, police-c active only before the quarter, and the "county" database."""
    w = Script(s)
    for tenant in ("dmv", "county", "police-a", "police-b", "police-c"):
        w.tenant(tenant)
    r1 = w.request("dmv", "police-a", SINCE, "approved", grant=True)  # exactly at the start: inclusive
    r2 = w.request("dmv", "police-a", at(2, 1), "approved", decided=at(4, 2), grant=True)
    w.request("dmv", "police-a", at(3, 1), "denied")
    w.search("dmv", "police-a", SINCE + timedelta(hours=3), request=r1, candidates=3, confirmed=1, half_confirmed=1)
    w.search("dmv", "police-a", at(3, 15), request=r2, status="destroyed", candidates=1)
    w.search("dmv", "police-a", at(3, 16), request=r2, candidates=1)

    e1 = w.search("dmv", "police-b", at(2, 9), emergency=True, candidates=2)
    w.request("dmv", "police-b", at(2, 10), "pending", emergency_search=e1)
    w.search("dmv", "police-b", at(2, 20), emergency=True, status="flagged", candidates=1)

    # Not in the quarter.
    old = w.request("dmv", "police-a", SINCE - timedelta(microseconds=1), "approved", grant=True)
    w.search("dmv", "police-a", SINCE - timedelta(seconds=1), request=old, candidates=5, confirmed=2,
             confirmed_at=at(1, 5))
    w.request("dmv", "police-a", UNTIL, "denied")
    w.search("dmv", "police-b", UNTIL, emergency=True, status="flagged", candidates=2)
    w.request("dmv", "police-c", at(1, 1) - timedelta(days=30), "approved", grant=True)
    # Another administering agency.
    rc = w.request("county", "police-a", at(1, 20), "approved", grant=True)
    w.search("county", "police-a", at(1, 21), request=rc, candidates=4, confirmed=1)
    return w


DMV_EXPECTED = {
    "police-a": dict(requests_received=3, approved=2, denied=1, pending=0, searches_run=3, emergency_searches=0,
                     emergency_flagged=0, candidates_returned=5, candidates_per_request=1.67, confirmed_leads=1),
    "police-b": dict(requests_received=1, approved=0, denied=0, pending=1, searches_run=2, emergency_searches=2,
                     emergency_flagged=1, candidates_returned=3, candidates_per_request=1.5, confirmed_leads=0),
}
DMV_TOTALS = dict(requests_received=4, approved=2, denied=1, pending=1, searches_run=5, emergency_searches=2,
                  emergency_flagged=1, candidates_returned=8, candidates_per_request=1.6, confirmed_leads=1)


def by_agency(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["requesting_tenant"]: {k: v for k, v in row.items() if k != "requesting_tenant"}
            for row in report["agencies"]}


def test_transparency_report_counts_the_scripted_quarter(db: Database) -> None:
    with db.session() as s:
        write_quarter(s)
    with db.session(readonly=True) as s:
        report = transparency_report(s, "dmv", SINCE, UNTIL)
        # The same bounds in another time zone select the same rows (SQLite stores UTC wall time).
        eastern = timezone(timedelta(hours=-5))
        shifted = transparency_report(s, "dmv", SINCE.astimezone(eastern), UNTIL.astimezone(eastern))
        everyone = transparency_report(s, None, SINCE, UNTIL)
        empty = transparency_report(s, "dmv", datetime(2030, 1, 1), datetime(2030, 4, 1))  # naive: UTC

    assert [row["requesting_tenant"] for row in report["agencies"]] == ["police-a", "police-b"]
    assert by_agency(report) == DMV_EXPECTED
    assert report["totals"] == DMV_TOTALS
    assert report["administering_tenant"] == "dmv"
    assert report["period"] == {"since": "2026-01-01T00:00:00+00:00", "until": "2026-04-01T00:00:00+00:00"}
    assert datetime.fromisoformat(report["generated_at"]).tzinfo is not None
    assert by_agency(shifted) == DMV_EXPECTED and shifted["totals"] == DMV_TOTALS

    # Every administering agency: the county search and its confirmed lead join police-a's row.
    assert by_agency(everyone)["police-a"] == dict(
        requests_received=4, approved=3, denied=1, pending=0, searches_run=4, emergency_searches=0,
        emergency_flagged=0, candidates_returned=9, candidates_per_request=2.25, confirmed_leads=2)
    assert by_agency(everyone)["police-b"] == DMV_EXPECTED["police-b"]
    assert everyone["totals"]["searches_run"] == 6 and everyone["totals"]["candidates_per_request"] == 2.0
    assert everyone["administering_tenant"] is None

    assert empty["agencies"] == []
    assert empty["totals"]["candidates_per_request"] == 0 and empty["totals"]["requests_received"] == 0

    with pytest.raises(ValueError), db.session(readonly=True) as s:
        transparency_report(s, "dmv", UNTIL, SINCE)


def test_transparency_report_holds_no_personal_data(db: Database) -> None:
    with db.session() as s:
        script = write_quarter(s)
        subject_ids = [c.subject_id for c in s.query(LeCandidate)]
    assert len(subject_ids) == 19  # every candidate row, including the ones outside the quarter
    with db.session(readonly=True) as s:
        report = transparency_report(s, None, SINCE - timedelta(days=365), UNTIL + timedelta(days=365))
    dump = json.dumps(report)
    assert report["totals"]["requests_received"] == 8
    for text in (*SECRETS, *subject_ids, *script.ids):
        assert text not in dump, text
    # Only these keys exist: agency ids and counts.
    assert {key for row in report["agencies"] for key in row} == {"requesting_tenant", *REPORT_COUNTS}


def test_report_csv_parses_back_to_the_same_numbers(db: Database) -> None:
    with db.session() as s:
        write_quarter(s)
        Script(s).tenant("=HYPERLINK(1)")
        Script(s).request("dmv", "=HYPERLINK(1)", at(2, 2), "denied")
    with db.session(readonly=True) as s:
        report = transparency_report(s, "dmv", SINCE, UNTIL)
    text = report_csv(report)
    assert text.startswith("row,requesting_agency,requests_received,") and text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["row"] for r in rows] == ["agency", "agency", "agency", "total"]
    parsed = {r["requesting_agency"]: r for r in rows if r["row"] == "agency"}
    # A cell a spreadsheet would evaluate is defused.
    assert "'=HYPERLINK(1)" in parsed and parsed["'=HYPERLINK(1)"]["denied"] == "1"
    for agency, expected in DMV_EXPECTED.items():
        for key, value in expected.items():
            assert type(value)(parsed[agency][key]) == value, (agency, key)
    total = rows[-1]
    assert total["requesting_agency"] == ""
    for key, value in DMV_TOTALS.items():
        expect = value + 1 if key in ("requests_received", "denied") else value
        assert type(value)(total[key]) == expect, key


VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "wbr", "source", "track"}


class Page(HTMLParser):
    """Checks that every element closes in order and collects what the tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.errors: list[str] = []
        self.bars: list[dict[str, Any]] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "rect" and "svg" in self.stack:
            self.bars.append({**dict(attrs), "title": ""})
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "rect":
            self.bars.append({**dict(attrs), "title": ""})

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]} ")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack[-2:] == ["rect", "title"]:
            self.bars[-1]["title"] += data


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


def test_report_html_is_a_self_contained_page_with_one_bar_per_count(db: Database) -> None:
    with db.session() as s:
        write_quarter(s)
        Script(s).tenant(HOSTILE, name="Hostile <i>agency</i>")
        Script(s).request("dmv", HOSTILE, at(3, 3), "approved", grant=True)
    with db.session(readonly=True) as s:
        report = transparency_report(s, "dmv", SINCE, UNTIL)
    assert [row["requesting_tenant"] for row in report["agencies"]] == [HOSTILE, "police-a", "police-b"]
    page = report_html(report)
    assert page.startswith("<!DOCTYPE html>")
    parsed = parse(page)
    tags = [tag for tag, _ in parsed.tags]
    assert tags[0] == "html" and "title" in tags and "table" in tags
    assert page.count("<svg") == 1 and "<title id=\"chart-title\">" in page and "<desc id=\"chart-desc\">" in page
    # The hostile id appears only escaped: no script, no injected element, no external resource.
    assert "<script" not in page and "<b>" not in page and "<i>" not in page
    assert escape(HOSTILE) in page
    assert not [a for _, attrs in parsed.tags for a in ("src", "href") if a in attrs]
    text = "".join(parsed.text)
    for agency in (HOSTILE, "police-a", "police-b"):
        assert agency in text
    assert "2026-01-01T00:00:00+00:00" in text and "2026-04-01T00:00:00+00:00" in text

    # One bar per agency and series (received, approved, denied, searches run, confirmed leads).
    assert len(parsed.bars) == 3 * 5 == page.count("<rect")
    values = {}
    for bar in parsed.bars:
        agency, rest = bar["title"].rsplit(": ", 1)
        label, value = rest.rsplit(" ", 1)
        values[(agency, label)] = (int(value), float(bar["height"]))
    assert values[("police-a", "requests received")][0] == 3
    assert values[("police-a", "denied")][0] == 1
    assert values[("police-a", "searches run")][0] == 3
    assert values[("police-b", "requests received")][0] == 1
    assert values[("police-b", "confirmed leads")][0] == 0
    assert values[(HOSTILE, "approved")][0] == 1
    # Heights are proportional to the counts.
    scales = {round(height / value, 3) for value, height in values.values() if value}
    assert len(scales) == 1
    assert all(height == 0 for value, height in values.values() if not value)
    # The legend names every series; axis labels are there.
    for label in ("Requests received", "Approved", "Denied", "Searches run", "Confirmed leads", "Count",
                  "Requesting agency"):
        assert re.search(rf">{label}<", page), label


def add_subjects(s: Session, tenant: str, purpose: str, n: int, legal_basis: str) -> list[str]:
    ids = []
    for i in range(n):
        sid = str(uuid.uuid4())
        ids.append(sid)
        s.add(Subject(id=sid, tenant_id=tenant, external_id=f"ext-subject-{tenant}-{purpose}-{i}",
                      display_name="Alice Example", purpose=purpose, legal_basis=legal_basis,
                      failed_attempts=0, passcode_failures=0, created_at=at(1, 2), updated_at=at(1, 2)))
    s.flush()
    return ids


def add_purpose(s: Session, tenant: str, name: str, legal_bases: str, retention_days: int, category: str, *,
                searchable: bool = False, ends_at: datetime | None = None) -> None:
    s.add(Purpose(tenant_id=tenant, name=name, description=f"Purpose {name} of {tenant}", legal_bases=legal_bases,
                  retention_days=retention_days, law_enforcement_searchable=searchable, subject_category=category,
                  ends_at=ends_at, created_at=at(1, 1), updated_at=at(1, 1)))
    s.flush()


def test_processing_record_follows_the_database_and_the_settings(db: Database, tmp_path: Path) -> None:
    with db.session() as s:
        w = Script(s)
        for tenant in ("dmv", "county", "police-a", "police-b", "police-c"):
            w.tenant(tenant, name=f"{tenant.upper()} agency")
        add_purpose(s, "dmv", "driver-licence", "law,public-task", 1095, "drivers", searchable=True)
        add_purpose(s, "dmv", "staff-login", "consent,contract", 365, "employees", ends_at=at(12, 31))
        add_purpose(s, "county", "mugshots", "law", 730, "arrested persons", searchable=True)
        subject_ids = (add_subjects(s, "dmv", "driver-licence", 3, "law") + add_subjects(s, "dmv", "staff-login", 1, "consent")
                       + add_subjects(s, "county", "mugshots", 2, "law"))
        w.request("dmv", "police-a", at(1, 10), "approved", grant=True)
        w.request("dmv", "police-a", at(1, 11), "approved", grant=True)  # twice: listed once
        w.request("dmv", "police-b", at(1, 12), "denied")  # no grant: not a recipient
        w.request("dmv", "police-b", at(1, 13), "pending")
        w.request("county", "police-c", at(1, 14), "approved", grant=True)

    local = make_settings(tmp_path / "home", db.url, controller_name="DMV of Utopia", controller_contact="dpo@dmv",
                          dpo_contact=None)
    hsm = make_settings(tmp_path / "home", db.url, controller_name="DMV of Utopia", controller_contact="dpo@dmv",
                        dpo_contact="Jo DPO <dpo@dmv>", key_provider="pkcs11", tls=False, lockout_attempts=7,
                        audit_witnesses=["https://w1.example", "https://w2.example", "/srv/w3.jsonl"],
                        person_verify_limit_per_hour=42, person_search_limit_per_day=9)
    with db.session(readonly=True) as s:
        record = processing_record(s, local)
        record_hsm = processing_record(s, hsm, "dmv")
        record_county = processing_record(s, local, "county")

    assert record["controller"] == {"name": "DMV of Utopia", "contact": "dpo@dmv", "dpo_contact": None}
    assert datetime.fromisoformat(record["generated_at"]).tzinfo is not None
    acts = {(a["tenant_id"], a["purpose"]): a for a in record["processing_activities"]}
    assert sorted(acts) == [("county", "mugshots"), ("dmv", "driver-licence"), ("dmv", "staff-login")]
    dl, staff, mug = acts[("dmv", "driver-licence")], acts[("dmv", "staff-login")], acts[("county", "mugshots")]
    assert dl["legal_bases"] == ["law", "public-task"] and staff["legal_bases"] == ["consent", "contract"]
    assert dl["description"] == "Purpose driver-licence of dmv" and dl["tenant_name"] == "DMV agency"
    assert (dl["retention"]["retention_days"], staff["retention"]["retention_days"]) == (1095, 365)
    assert "3 years after the last interaction" in staff["retention"]["note"]
    assert staff["retention"]["purpose_ends_at"] == "2026-12-31T12:00:00+00:00"
    assert dl["retention"]["purpose_ends_at"] is None
    assert dl["data_subject_categories"] == ["drivers"] and staff["data_subject_categories"] == ["employees"]
    assert (dl["enrolled_subjects"], staff["enrolled_subjects"], mug["enrolled_subjects"]) == (3, 1, 2)
    assert "face templates (128-D embeddings, encrypted)" in dl["personal_data_categories"]
    assert [r["tenant_id"] for r in dl["recipients"]] == ["police-a"]
    assert dl["recipients"][0]["name"] == "POLICE-A agency"
    assert staff["recipients"] == []  # same tenant, not searchable by law enforcement
    assert [r["tenant_id"] for r in mug["recipients"]] == ["police-c"]
    assert dl["third_country_transfers"] == ["none"]

    # One tenant only.
    assert [(a["tenant_id"], a["purpose"]) for a in record_county["processing_activities"]] == [("county", "mugshots")]
    assert [a["purpose"] for a in record_hsm["processing_activities"]] == ["driver-licence", "staff-login"]

    # The security measures follow the settings.
    measures, measures_hsm = " | ".join(record["security_measures"]), " | ".join(record_hsm["security_measures"])
    assert record_hsm["processing_activities"][0]["security_measures"] == record_hsm["security_measures"]
    assert "AES-256-GCM" in measures and "AES-256-GCM" in measures_hsm
    assert "local key file" in measures and "PKCS#11" not in measures
    assert "PKCS#11" in measures_hsm and "local key file" not in measures_hsm
    assert "TLS on the HTTP API: on" in measures and "TLS on the HTTP API: OFF" in measures_hsm
    assert "1 witness" in measures and "3 witnesses" in measures_hsm
    assert "Ed25519" in measures and "Liveness (presentation-attack) detection: not yet" in measures
    assert "Lockout after 5 failed" in measures and "Lockout after 7 failed" in measures_hsm
    assert "42 verifications per hour, 9 identifications" in measures_hsm
    assert record_hsm["controller"]["dpo_contact"] == "Jo DPO <dpo@dmv>"

    # Counts, not people.
    dump = json.dumps(record)
    for text in (*subject_ids, "ext-subject-", "Alice Example", "det.jones", "CASE-2026-0042", "police-b"):
        assert text not in dump, text

    page = processing_record_html(record_hsm)
    parsed = parse(page)
    text = "".join(parsed.text)
    assert "<dpo@dmv>" not in page and escape("Jo DPO <dpo@dmv>") in page
    assert "Jo DPO <dpo@dmv>" in text and "driver-licence" in text and "staff-login" in text
    assert "POLICE-A agency (police-a)" in text and "PKCS#11" in text and "drivers" in text
    assert "<script" not in page and not [a for _, attrs in parsed.tags for a in ("src", "href") if a in attrs]
