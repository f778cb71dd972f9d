"""The governance rules as pure functions: no database, no face models (ARCHITECTURE.md: tests by layer)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from facewarden.errors import ErrorKind, FaceWardenError
from facewarden.governance import policy, roles
from facewarden.governance.actors import LOCAL_ADMIN, Actor

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _code(fn, *args, **kwargs) -> tuple[str, ErrorKind]:  # type: ignore[no-untyped-def]
    with pytest.raises(FaceWardenError) as err:
        fn(*args, **kwargs)
    return err.value.code, err.value.kind


def test_retention_is_the_earliest_of_term_purpose_end_and_period_after_last_interaction() -> None:
    created = NOW - timedelta(days=100)
    assert policy.retention_deadline(created_at=created, last_interaction=None, retention_days=30,
                                     consent_term=None, purpose_ends=None) == created + timedelta(days=30)
    # The last interaction restarts the period; never beyond BIPA's three years.
    assert policy.retention_deadline(created_at=created, last_interaction=NOW, retention_days=10_000,
                                     consent_term=None, purpose_ends=None) == NOW + timedelta(days=3 * 365)
    assert policy.retention_deadline(created_at=created, last_interaction=NOW, retention_days=30,
                                     consent_term=NOW + timedelta(days=1), purpose_ends=NOW + timedelta(days=2)) \
        == NOW + timedelta(days=1)
    assert policy.retention_deadline(created_at=created, last_interaction=NOW, retention_days=30,
                                     consent_term=None, purpose_ends=NOW + timedelta(days=2)) == NOW + timedelta(days=2)


def test_enrolment_basis_and_purpose_end() -> None:
    bases = frozenset({"consent"})
    policy.check_enrolment_basis("login", bases, None, "consent", NOW)
    assert _code(policy.check_enrolment_basis, "login", bases, None, "law", NOW) == \
        ("legal_basis_not_allowed", ErrorKind.FORBIDDEN)
    assert _code(policy.check_enrolment_basis, "login", bases, NOW, "consent", NOW) == \
        ("purpose_ended", ErrorKind.FORBIDDEN)


def test_a_template_matches_only_for_its_own_purpose_and_the_refusal_does_not_name_it() -> None:
    policy.check_match_purpose("payment", "payment")
    with pytest.raises(FaceWardenError) as err:
        policy.check_match_purpose("payment-secret-purpose", "login")
    assert err.value.code == "purpose_mismatch" and "payment-secret-purpose" not in err.value.message


@pytest.mark.parametrize(("change", "code"), [
    ({"name": "law-enforcement"}, "invalid_purpose"),
    ({"name": "bad name!"}, "invalid_purpose"),
    ({"legal_bases": frozenset({"whim"})}, "invalid_legal_basis"),
    ({"retention_days": 3 * 365 + 1}, "invalid_retention"),
    ({"retention_days": 0}, "invalid_retention"),
    ({"law_enforcement_searchable": True}, "invalid_purpose"),  # consent templates are never searchable
])
def test_purpose_validation(change: dict, code: str) -> None:
    spec = replace(policy.DEFAULT_PURPOSES[0], **change)
    assert _code(policy.validate_purpose, spec)[0] == code


def test_a_searchable_purpose_must_rest_on_a_law() -> None:
    policy.validate_purpose(policy.PurposeSpec("dl", "licences", frozenset({"law"}), 365, "drivers", True))


def _request(**change: object) -> policy.RequestFields:
    base = policy.RequestFields("CASE-1", "robbery", "why", "serious-crime", "court-order", "ORDER-7", None, 5)
    return replace(base, **change)


def test_police_request_rules() -> None:
    allowed = frozenset({"serious-crime"})
    policy.check_request(_request(), allowed, 10)
    assert _code(policy.check_request, _request(court_order_ref=None), allowed, 10)[0] == "request_incomplete"
    assert policy.missing_request_fields(_request(offence=" ", court_order_ref="")) == ["offence", "court_order_ref"]
    assert _code(policy.check_request, _request(basis_kind="emergency"), allowed, 10)[0] == "request_incomplete"
    assert _code(policy.check_request, _request(authorised_use="missing-person"), allowed, 10) == \
        ("use_not_allowed", ErrorKind.FORBIDDEN)
    assert _code(policy.check_request, _request(authorised_use="curiosity"), allowed, 10)[0] == "invalid_request"
    assert _code(policy.check_request, _request(max_candidates=11), allowed, 10)[0] == "invalid_request"


def test_actors_roles_and_purpose_bound_keys() -> None:
    device = Actor("t1", "apikey:1", frozenset({roles.VERIFIER}), purposes=frozenset({"payment"}))
    device.require(roles.VERIFIER, roles.OPERATOR)
    device.check_purpose("payment")
    assert _code(device.require, roles.ADMIN) == ("forbidden", ErrorKind.FORBIDDEN)
    assert _code(device.check_purpose, "login") == ("purpose_not_allowed_for_key", ErrorKind.FORBIDDEN)
    assert LOCAL_ADMIN.is_local_admin and not device.is_local_admin
    assert roles.PERSONAL_ROLES <= roles.ALL_ROLES and roles.SUBJECT not in roles.ALL_ROLES


def test_the_pure_layers_load_neither_dlib_nor_a_database_driver() -> None:
    code = ("import sys, facewarden.governance.policy, facewarden.governance.report_rules, "
            "facewarden.governance.actors, facewarden.gallery, facewarden.vision.distance, facewarden.errors; "
            "print(sorted(m for m in ('dlib', 'psycopg', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
