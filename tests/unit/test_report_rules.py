"""The report rules and renderers from hand-made facts: no database, no face models."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from pathlib import Path

import pytest

from facewarden.config import Settings
from facewarden.governance.policy import MAX_RETENTION_DAYS
from facewarden.governance.report_render import processing_record_html, report_csv, report_html
from facewarden.governance.report_rules import (
    REPORT_COUNTS,
    LeadCount,
    ProcessingFacts,
    PurposeFact,
    RecipientFact,
    RequestCount,
    SearchCount,
    SubjectCount,
    TransparencyFacts,
    processing_record,
    reporting_period,
    transparency_report,
)

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
HOSTILE = "<script>&<b>x"
NOW = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)

FACTS = TransparencyFacts(
    administering_tenant="dmv",
    requests=(
        RequestCount("police-a", "approved", 2), RequestCount("police-a", "denied", 1),
        RequestCount("police-b", "pending", 1), RequestCount("police-b", "expired", 2),  # lapsed: still pending
        RequestCount(HOSTILE, "approved", 1), RequestCount("=HYPERLINK(1)", "denied", 1),
    ),
    searches=(
        SearchCount("police-a", False, "leads", 2, 4), SearchCount("police-a", False, "destroyed", 1, 1),
        SearchCount("police-b", True, "leads", 1, 2), SearchCount("police-b", True, "flagged", 1, 1),
        SearchCount("police-c", False, "flagged", 8, 1),  # flagged but not an emergency: not an emergency flag
    ),
    leads=(LeadCount("police-a", 1), LeadCount("police-c", 1)),
)


def report() -> dict:
    return transparency_report(FACTS, SINCE, UNTIL, now=lambda: NOW)


def rows(result: dict) -> dict[str, dict]:
    return {row["requesting_tenant"]: row for row in result["agencies"]}


def test_counts_per_agency_averages_and_totals() -> None:
    result = report()
    assert [row["requesting_tenant"] for row in result["agencies"]] == sorted(
        ["police-a", "police-b", "police-c", HOSTILE, "=HYPERLINK(1)"])
    got = rows(result)
    assert got["police-a"] == dict(requesting_tenant="police-a", requests_received=3, approved=2, denied=1,
                                   pending=0, searches_run=3, emergency_searches=0, emergency_flagged=0,
                                   candidates_returned=5, candidates_per_request=1.67, confirmed_leads=1)
    # Expired requests are pending ones that lapsed undecided.
    assert (got["police-b"]["requests_received"], got["police-b"]["pending"]) == (3, 3)
    assert (got["police-b"]["emergency_searches"], got["police-b"]["emergency_flagged"]) == (2, 1)
    assert got["police-b"]["candidates_per_request"] == 1.5
    # Rounded half up to 2 decimals (1/8 = 0.125), and an agency with searches but no request is listed.
    assert got["police-c"]["candidates_per_request"] == 0.13 and got["police-c"]["requests_received"] == 0
    assert got["police-c"]["emergency_flagged"] == 0
    assert got[HOSTILE]["searches_run"] == 0 and got[HOSTILE]["candidates_per_request"] == 0.0
    assert set(got[HOSTILE]) == {"requesting_tenant", *REPORT_COUNTS}
    assert result["totals"] == dict(requests_received=8, approved=3, denied=2, pending=3, searches_run=13,
                                    emergency_searches=2, emergency_flagged=1, candidates_returned=9,
                                    candidates_per_request=0.69, confirmed_leads=2)
    assert result["administering_tenant"] == "dmv"
    assert result["period"] == {"since": "2026-01-01T00:00:00+00:00", "until": "2026-04-01T00:00:00+00:00"}
    assert result["generated_at"] == NOW.isoformat()


def test_no_facts_gives_an_empty_report() -> None:
    result = transparency_report(TransparencyFacts(None), SINCE, UNTIL)
    assert result["agencies"] == [] and result["administering_tenant"] is None
    assert all(value == 0 for value in result["totals"].values())
    assert result["totals"]["candidates_per_request"] == 0.0
    assert datetime.fromisoformat(result["generated_at"]).tzinfo is not None


def test_periods_are_utc_and_must_end_after_they_start() -> None:
    eastern = timezone(timedelta(hours=-5))
    assert reporting_period(SINCE.astimezone(eastern), UNTIL) == (SINCE, UNTIL)
    assert reporting_period(datetime(2026, 1, 1), datetime(2026, 4, 1)) == (SINCE, UNTIL)  # naive: UTC
    shifted = transparency_report(FACTS, SINCE.astimezone(eastern), UNTIL.astimezone(eastern))
    assert shifted["period"] == report()["period"]
    for since, until in ((UNTIL, SINCE), (SINCE, SINCE), (datetime(2026, 1, 1), SINCE),
                         (SINCE.astimezone(eastern), SINCE)):
        with pytest.raises(ValueError):
            reporting_period(since, until)
        with pytest.raises(ValueError):
            transparency_report(FACTS, since, until)


def test_csv_parses_back_and_defuses_formulas() -> None:
    result = report()
    text = report_csv(result)
    assert text.startswith("row,requesting_agency,requests_received,") and text.endswith("\r\n")
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["row"] for r in parsed] == ["agency"] * 5 + ["total"]
    agencies = {r["requesting_agency"]: r for r in parsed if r["row"] == "agency"}
    assert "=HYPERLINK(1)" not in agencies and agencies["'=HYPERLINK(1)"]["denied"] == "1"
    assert agencies[HOSTILE]["approved"] == "1"  # CSV is not HTML: the id stays as it is
    for agency, row in rows(result).items():
        name = "'" + agency if agency.startswith("=") else agency
        for key in REPORT_COUNTS:
            assert type(row[key])(agencies[name][key]) == row[key], (agency, key)
    assert parsed[-1]["requesting_agency"] == ""
    for key in REPORT_COUNTS:
        assert type(result["totals"][key])(parsed[-1][key]) == result["totals"][key], key


def test_html_escapes_hostile_ids_and_draws_one_bar_per_count() -> None:
    page = report_html(report())
    assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page
    assert "<script" not in page and "<b>" not in page and escape(HOSTILE) in page
    assert not re.search(r"\s(src|href)=", page)
    # Five series per agency, each a <rect> whose title names agency, count and value.
    bars = re.findall(r'<rect [^>]*height="([0-9.]+)"[^>]*><title>(.*?): ([a-z ]+) (\d+)</title></rect>', page)
    assert len(bars) == 5 * 5 == page.count("<rect")
    values = {(agency, label): (int(value), float(height)) for height, agency, label, value in bars}
    assert values[(escape(HOSTILE), "approved")][0] == 1
    assert values[("police-a", "requests received")][0] == 3
    assert values[("police-c", "searches run")][0] == 8
    assert len({round(height / value, 3) for value, height in values.values() if value}) == 1
    assert all(height == 0 for value, height in values.values() if not value)


def test_html_says_when_there_is_nothing_to_show() -> None:
    page = report_html(transparency_report(TransparencyFacts("dmv"), SINCE, UNTIL))
    assert "No requests or searches in this period." in page and "No law-enforcement activity" in page
    assert "<rect" not in page


PROCESSING = ProcessingFacts(
    tenant_id=None,
    purposes=(
        PurposeFact("county", "County <agency>", "mugshots", "Mugshots", "law", "arrested persons", 730, True, None),
        PurposeFact("dmv", "DMV agency", "driver-licence", "Licences", " law , public-task,, ", "drivers", 1095,
                    True, None),
        PurposeFact("dmv", "DMV agency", "staff-login", "Staff", "consent", "employees", 365, False,
                    datetime(2026, 12, 31, 12)),  # naive from SQLite: UTC
    ),
    subjects=(SubjectCount("dmv", "driver-licence", 3), SubjectCount("county", "mugshots", 2)),
    recipients=(RecipientFact("dmv", "police-b", "Police B"), RecipientFact("dmv", "police-a", "Police A"),
                RecipientFact("county", "police-c", HOSTILE)),
)


def test_processing_record_from_facts_and_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, controller_name="DMV <of> Utopia", controller_contact="dpo@dmv",
                        dpo_contact=None, tls=False, lockout_attempts=7)
    record = processing_record(PROCESSING, settings, now=lambda: NOW)
    assert record["generated_at"] == NOW.isoformat() and record["tenant_id"] is None
    assert record["controller"] == {"name": "DMV <of> Utopia", "contact": "dpo@dmv", "dpo_contact": None}
    acts = {a["purpose"]: a for a in record["processing_activities"]}
    assert [a["purpose"] for a in record["processing_activities"]] == ["mugshots", "driver-licence", "staff-login"]
    dl, staff, mug = acts["driver-licence"], acts["staff-login"], acts["mugshots"]
    assert dl["legal_bases"] == ["law", "public-task"]
    assert [r["tenant_id"] for r in dl["recipients"]] == ["police-a", "police-b"]  # sorted
    assert dl["recipients"][0] == {"tenant_id": "police-a", "name": "Police A", "role": "law-enforcement agency"}
    assert staff["recipients"] == []  # not searchable by law enforcement
    assert (dl["enrolled_subjects"], staff["enrolled_subjects"], mug["enrolled_subjects"]) == (3, 0, 2)
    assert staff["retention"]["purpose_ends_at"] == "2026-12-31T12:00:00+00:00"
    assert dl["retention"] == {"retention_days": 1095, "maximum_days": MAX_RETENTION_DAYS, "purpose_ends_at": None,
                               "note": dl["retention"]["note"]}
    assert "1095 days after" in dl["retention"]["note"]
    assert dl["third_country_transfers"] == ["none"] and dl["data_subject_categories"] == ["drivers"]
    measures = " | ".join(record["security_measures"])
    assert dl["security_measures"] == record["security_measures"]
    assert "TLS on the HTTP API: OFF" in measures and "Lockout after 7 failed" in measures
    assert "local key file" in measures and "PKCS#11" not in measures

    page = processing_record_html(record)
    assert "<of>" not in page and escape("DMV <of> Utopia") in page
    assert "<script" not in page and escape(HOSTILE) in page and "<agency>" not in page
    assert "not designated" in page and "Police A (police-a), law-enforcement agency" in page


def test_processing_record_without_purposes(tmp_path: Path) -> None:
    record = processing_record(ProcessingFacts("dmv"), Settings(home=tmp_path))
    assert record["processing_activities"] == [] and record["tenant_id"] == "dmv"
    page = processing_record_html(record)
    assert "No purposes are configured." in page and "for tenant dmv" in page
