"""Subject references: one canonical form to store, one key to compare, and a refusal that names the rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facewarden.errors import ErrorKind, InvalidInput
from facewarden.governance.identifiers import MAX_REFERENCE_CHARS, canonical_reference, reference_key


@pytest.mark.parametrize(("raw", "stored"), [("obama", "obama"), ("  Obama\t", "Obama"), ("ｏｂａｍａ", "obama"),
                                             ("Jane\u00a0Doe", "Jane Doe"), ("ﬁle-7", "file-7"), ("a.b", "a.b"),
                                             ("...x", "...x"), ("DL-OBAMA", "DL-OBAMA")])
def test_the_canonical_form_is_nfkc_and_stripped_with_case_kept(raw: str, stored: str) -> None:
    assert canonical_reference(raw) == stored


@pytest.mark.parametrize(("raw", "rule"), [("", "empty"), ("   ", "empty"), ("/", "separator"), ("a/b", "separator"),
                                           ("a\\b", "separator"), (".", "dots"), ("..", "dots"), ("....", "dots"),
                                           ("....//....//", "separator"), ("a\x00b", "control"), ("a\nb", "control"),
                                           ("zero\u200bwidth", "control"), ("rtl\u202eoverride", "control"),
                                           ("a\u2028b", "control"), ("x" * (MAX_REFERENCE_CHARS + 1), "characters long"),
                                           ("\ufdfa" * 12, "characters long")])  # NFKC expands U+FDFA to 18 letters
def test_refusals_name_the_rule(raw: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as err:
        canonical_reference(raw)
    assert err.value.code == "invalid_subject" and err.value.kind is ErrorKind.INVALID
    assert rule in err.value.message


def test_the_key_folds_case_width_and_spacing() -> None:
    assert len({reference_key(r) for r in ("obama", " OBAMA ", "Obama", "ｏｂａｍａ", "OBAMA\u00a0")}) == 1
    assert reference_key("Straße") == reference_key("STRASSE")
    assert reference_key("obama") != reference_key("obama2")


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=220))
def test_any_text_is_canonical_or_refused_and_canonical_forms_are_fixed_points(raw: str) -> None:
    try:
        ref = canonical_reference(raw)
    except InvalidInput as exc:
        assert exc.code == "invalid_subject"
        return
    assert canonical_reference(ref) == ref and reference_key(ref) == reference_key(raw)
    assert ref == ref.strip() and 1 <= len(ref) <= MAX_REFERENCE_CHARS and "/" not in ref and "\x00" not in ref
