"""KeyRing: the key recipe the use cases call. No dlib, no main database: a temp key file and key store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert

from facewarden.config import Settings
from facewarden.crypto.datakeys import DataKeyStore, data_keys, make_datakey_engine
from facewarden.crypto.envelope import TemplateAAD, open_sealed, seal
from facewarden.crypto.kek import WrappedKey
from facewarden.crypto.keyring import KeyRing, make_keyring
from facewarden.crypto.local import LocalKeyFileProvider
from facewarden.errors import IntegrityFailure, KeyUnavailable


def _old_length_prefixed(*parts: str) -> bytes:
    # The encoding the service and envelope.py used before the key ring, copied so a drift shows here.
    return b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)


def _vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=128).astype(np.float32)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    kek = LocalKeyFileProvider(tmp_path / "keys" / "kek.json", create=True)
    return KeyRing(DataKeyStore(make_datakey_engine(f"sqlite:///{tmp_path / 'keys' / 'datakeys.db'}"), kek))


def test_templates_round_trip(ring: KeyRing) -> None:
    vecs = [_vec(1), _vec(2)]
    blobs = ring.seal_templates("t1", "s1", [("tpl1", "m@1", vecs[0]), ("tpl2", "m@1", vecs[1])])
    assert [len(b) for b in blobs] == [1 + 12 + 128 * 4 + 16] * 2 and all(b[:1] == b"\x01" for b in blobs)
    opened = ring.open_templates("t1", "s1", [("tpl1", "m@1", blobs[0]), ("tpl2", "m@1", blobs[1])])
    for got, want in zip(opened, vecs, strict=True):
        assert got.dtype == np.float32 and np.array_equal(got, want)
    assert ring.versions_in_use() == {1: 1}  # one data key per subject


def test_open_templates_unwraps_the_data_key_once(ring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = ring.seal_templates("t1", "s1", [(f"tpl{i}", "m@1", _vec(i)) for i in range(4)])
    calls: list[int] = []
    unwrap = ring.kek.unwrap

    def counting(wrapped: WrappedKey, aad: bytes) -> bytes:
        calls.append(wrapped.kek_version)
        return unwrap(wrapped, aad)

    monkeypatch.setattr(ring.kek, "unwrap", counting)
    assert len(ring.open_templates("t1", "s1", [(f"tpl{i}", "m@1", b) for i, b in enumerate(sealed)])) == 4
    assert calls == [1]


def test_a_template_moved_to_another_record_does_not_open(ring: KeyRing) -> None:
    [blob] = ring.seal_templates("t1", "s1", [("tpl1", "m@1", _vec(1))])
    [other] = ring.seal_templates("t1", "s2", [("tpl9", "m@1", _vec(9))])
    ring.seal_templates("t2", "s1", [("tpl1", "m@1", _vec(1))])
    for tenant, subject, template, model in (("t1", "s2", "tpl1", "m@1"), ("t2", "s1", "tpl1", "m@1"),
                                             ("t1", "s1", "tpl2", "m@1"), ("t1", "s1", "tpl1", "m@2")):
        with pytest.raises(IntegrityFailure):
            ring.open_templates(tenant, subject, [(template, model, blob)])
    with pytest.raises(IntegrityFailure):  # another subject's blob, under this subject's ids
        ring.open_templates("t1", "s1", [("tpl9", "m@1", other)])
    with pytest.raises(IntegrityFailure):
        ring.open_templates("t1", "s1", [("tpl1", "m@1", blob[:-1])])


def test_shredding_a_subject_makes_its_templates_unavailable(ring: KeyRing) -> None:
    [blob] = ring.seal_templates("t1", "s1", [("tpl1", "m@1", _vec(1))])
    [kept] = ring.seal_templates("t1", "s2", [("tpl2", "m@1", _vec(2))])
    assert ring.shred_subject("t1", "s1") is True
    with pytest.raises(KeyUnavailable):
        ring.open_templates("t1", "s1", [("tpl1", "m@1", blob)])
    assert ring.shred_subject("t1", "s1") is False
    assert np.array_equal(ring.open_templates("t1", "s2", [("tpl2", "m@1", kept)])[0], _vec(2))
    ring.seal_templates("t1", "s1", [("tpl3", "m@1", _vec(3))])  # re-enrolment gets a new key
    with pytest.raises(IntegrityFailure):  # under which the old blobs stay dead
        ring.open_templates("t1", "s1", [("tpl1", "m@1", blob)])


def test_police_probe_is_bound_to_its_request(ring: KeyRing) -> None:
    blob = ring.seal_probe("r1", "police", "city", b"jpeg bytes")
    assert ring.open_probe("r1", "police", "city", blob) == b"jpeg bytes"
    ring.seal_probe("r2", "police", "city", b"other")
    with pytest.raises(IntegrityFailure):
        ring.open_probe("r2", "police", "city", blob)
    for administering, requesting in (("city", "police"), ("police", "other"), ("other", "city")):
        with pytest.raises(IntegrityFailure):
            ring.open_probe("r1", administering, requesting, blob)
    # The associated data is exactly the one lawenforcement.py built before the key ring.
    old_aad = _old_length_prefixed("facewarden-le-probe-v1", "r1", "police", "city")
    assert open_sealed(ring.store.get("le-request/r1"), blob, old_aad) == b"jpeg bytes"
    old_blob = seal(ring.store.get("le-request/r1"), b"older probe", old_aad)
    assert ring.open_probe("r1", "police", "city", old_blob) == b"older probe"
    assert ring.shred_probe("r1") is True
    with pytest.raises(KeyUnavailable):
        ring.open_probe("r1", "police", "city", blob)
    assert ring.shred_probe("r1") is False


def test_liveness_frames_are_sealed_under_the_session_key_and_bound_to_their_index(ring: KeyRing) -> None:
    frames = [b"frame zero", b"frame one"]
    blobs = ring.seal_liveness_frames("t1", "sess1", frames)
    key = ring.store.get("liveness/sess1")
    for i, (blob, frame) in enumerate(zip(blobs, frames, strict=True)):
        aad = _old_length_prefixed("facewarden-template-v1", "t1", "sess1", f"frame-{i}", "liveness-audit")
        assert open_sealed(key, blob, aad) == frame
        assert aad == TemplateAAD("t1", "sess1", f"frame-{i}", "liveness-audit").encode()
    with pytest.raises(IntegrityFailure):  # frame 0 does not pass for frame 1
        open_sealed(key, blobs[0], TemplateAAD("t1", "sess1", "frame-1", "liveness-audit").encode())
    assert ring.shred_liveness_frames("sess1") is True
    with pytest.raises(KeyUnavailable):
        ring.store.get("liveness/sess1")
    assert ring.seal_liveness_frames("t1", "sess2", []) == []
    assert ring.versions_in_use() == {}  # no frames, no key


def test_rotate_rewrap_and_retire(ring: KeyRing) -> None:
    sealed = {s: ring.seal_templates("t1", s, [("tpl", "m@1", _vec(n))])[0] for n, s in enumerate(("s1", "s2"))}
    probe = ring.seal_probe("r1", "police", "city", b"probe")
    assert ring.versions_in_use() == {1: 3}
    assert ring.rotate() == 2
    assert ring.retire_unused() == []  # version 1 still wraps data keys
    seen: list[tuple[int, int]] = []
    assert ring.rewrap_all(lambda done, total: seen.append((done, total))) == 3
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert ring.versions_in_use() == {2: 3}
    assert ring.rewrap_all() == 0
    assert ring.retire_unused() == [1]
    assert ring.kek.versions() == [2]
    assert ring.status() == {"provider": "local", "current_version": 2, "versions": [2],
                             "data_keys_per_version": {2: 3}}
    for n, s in enumerate(("s1", "s2")):
        assert np.array_equal(ring.open_templates("t1", s, [("tpl", "m@1", sealed[s])])[0], _vec(n))
    assert ring.open_probe("r1", "police", "city", probe) == b"probe"
    assert ring.retire_unused() == []  # the current version is never retired


def test_blobs_and_key_rows_of_the_old_format_still_open(ring: KeyRing) -> None:
    # A data key row as crypto/vault.py wrote it (same table, key id and wrap AAD), and a template sealed as
    # service/core.py sealed it (envelope.seal, little-endian float32, TemplateAAD).
    dek = b"\x07" * 32
    wrapped = ring.kek.wrap(dek, b"facewarden-data-key-v1|t1/s1")
    with ring.store.engine.begin() as conn:
        conn.execute(insert(data_keys).values(key_id="t1/s1", kek_provider="local", kek_version=wrapped.kek_version,
                                              wrapped=wrapped.blob, created_at=datetime.now(UTC)))
    aad = _old_length_prefixed("facewarden-template-v1", "t1", "s1", "tpl1", "dlib@1")
    assert aad == TemplateAAD("t1", "s1", "tpl1", "dlib@1").encode()
    blob = seal(dek, np.asarray(_vec(5), dtype="<f4").tobytes(), aad)
    assert np.array_equal(ring.open_templates("t1", "s1", [("tpl1", "dlib@1", blob)])[0], _vec(5))
    # And the other way: what the key ring seals, the primitives open with the old recipe.
    [new] = ring.seal_templates("t1", "s2", [("tpl2", "dlib@1", _vec(6))])
    raw = open_sealed(ring.store.get("t1/s2"), new, TemplateAAD("t1", "s2", "tpl2", "dlib@1").encode())
    assert np.array_equal(np.frombuffer(raw, dtype="<f4"), _vec(6))


def test_make_keyring_opens_the_configured_key_file_and_store(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", kek_uri=None, key_provider="local", key_file=None, vault_url=None)
    ring = make_keyring(settings, create=True)
    assert ring.kek.name == "local"
    assert (tmp_path / "home" / "keys" / "kek.json").exists() and (tmp_path / "home" / "keys" / "vault.db").exists()
    [blob] = ring.seal_templates("t1", "s1", [("tpl1", "m@1", _vec(1))])
    ring.close()
    again = make_keyring(settings)
    assert np.array_equal(again.open_templates("t1", "s1", [("tpl1", "m@1", blob)])[0], _vec(1))
    again.close()
