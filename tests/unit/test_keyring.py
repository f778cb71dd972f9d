"""KeyRing: the key recipe the use cases call. No dlib, no main database: a temp key file and key store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, insert, update

from facewarden.config import Settings
from facewarden.crypto.datakeys import DataKeyStore, data_keys, key_intents, make_datakey_engine
from facewarden.crypto.envelope import TemplateAAD, open_sealed, seal
from facewarden.crypto.intents import key_uses, owner_is_dead, process_token
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
                             "data_keys_per_version": {2: 3}, "pending_intents": 3}
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


# -- the intent journal: the key store and the main database stay consistent across crashes (issue 10, 5-6) --
# `used` stands for the main database: the resolver the service installs answers which key ids it still uses.

def _journal(ring: KeyRing, used: set[str]) -> KeyRing:
    ring.resolver = lambda ids: {k for k in ids if k in used}
    return ring


def _intents(ring: KeyRing) -> dict[str, str]:
    return {i.key_id: i.action for i in ring.store.intents()}


def test_a_new_key_is_journalled_until_confirmed(ring: KeyRing) -> None:
    ring.seal_templates("t1", "s1", [("tpl1", "m@1", _vec(1))])
    assert _intents(ring) == {"t1/s1": "create"}
    ring.confirm([ring.subject_key("t1", "s1")])
    assert _intents(ring) == {} and ring.versions_in_use() == {1: 1}


def test_recovery_destroys_a_key_whose_records_never_committed_and_keeps_one_whose_records_did(
        ring: KeyRing) -> None:
    _journal(ring, used={"t1/committed"})
    ring.seal_templates("t1", "committed", [("tpl1", "m@1", _vec(1))])
    [lost] = ring.seal_templates("t1", "lost", [("tpl2", "m@1", _vec(2))])
    report = ring.recover(timedelta(0), orphans=True)
    assert (report.created_kept, report.created_discarded, report.orphans) == (1, 1, 0)
    assert _intents(ring) == {} and ring.versions_in_use() == {1: 1}
    with pytest.raises(KeyUnavailable):
        ring.open_templates("t1", "lost", [("tpl2", "m@1", lost)])


def test_a_shred_is_finished_if_the_erasure_committed_and_undone_if_it_did_not(ring: KeyRing) -> None:
    used = {"t1/kept", "t1/erased"}
    _journal(ring, used)
    blobs = {s: ring.seal_templates("t1", s, [("tpl", "m@1", _vec(n))])[0] for n, s in enumerate(("kept", "erased"))}
    ring.confirm([ring.subject_key("t1", "kept"), ring.subject_key("t1", "erased")])
    ring.begin_shred([ring.subject_key("t1", "kept"), ring.subject_key("t1", "erased")])
    assert _intents(ring) == {"t1/kept": "shred", "t1/erased": "shred"}
    used.discard("t1/erased")  # only this erasure's main transaction committed before the crash
    report = ring.recover(timedelta(0))
    assert (report.shreds_finished, report.shreds_undone) == (1, 1) and _intents(ring) == {}
    assert np.array_equal(ring.open_templates("t1", "kept", [("tpl", "m@1", blobs["kept"])])[0], _vec(0))
    with pytest.raises(KeyUnavailable):
        ring.open_templates("t1", "erased", [("tpl", "m@1", blobs["erased"])])


def test_intents_of_a_live_process_wait_for_the_grace_period(ring: KeyRing) -> None:
    _journal(ring, used=set())
    ring.seal_templates("t1", "s1", [("tpl1", "m@1", _vec(1))])  # written by this process, which is alive
    report = ring.recover(timedelta(seconds=120))
    assert (report.resolved(), report.waiting) == (0, 1) and ring.versions_in_use() == {1: 1}
    later = datetime.now(UTC) + timedelta(seconds=121)
    assert ring.recover(timedelta(seconds=120), now=later).created_discarded == 1
    assert ring.versions_in_use() == {}


def test_a_dead_owner_on_this_host_is_recognised_and_nothing_else_is(ring: KeyRing) -> None:
    me = process_token()
    assert not owner_is_dead(me)
    host, pid, start = me.rsplit("|", 2)
    assert owner_is_dead(f"{host}|999999999|{start}")  # no such PID
    assert owner_is_dead(f"{host}|{pid}|{int(start) + 1}")  # the PID is alive but started at another time
    assert not owner_is_dead(f"other-host|boot|ns|{pid}|{start}")  # another machine: wait for the grace
    assert not owner_is_dead("") and not owner_is_dead("garbage")
    _journal(ring, used=set())
    ring.seal_templates("t1", "s1", [("tpl1", "m@1", _vec(1))])
    with ring.store.engine.begin() as conn:  # as if a killed server on this host had written it
        conn.execute(update(key_intents).values(owner=f"{host}|999999999|{start}"))
    assert ring.recover(timedelta(hours=1)).created_discarded == 1


def test_recovery_does_not_act_on_an_intent_that_changed_meanwhile(ring: KeyRing) -> None:
    _journal(ring, used=set())
    ring.seal_templates("t1", "s1", [("tpl1", "m@1", _vec(1))])
    [stale] = ring.store.intents()
    ring.confirm([ring.subject_key("t1", "s1")])  # the owner finished between our read and our decision
    assert ring.store.resolve(stale, destroy=True) is False
    assert ring.versions_in_use() == {1: 1}


def test_creating_settles_the_new_key_when_the_main_transaction_fails(ring: KeyRing) -> None:
    used: set[str] = set()
    _journal(ring, used)
    with pytest.raises(RuntimeError), ring.creating("enrol") as new:
        new.append(ring.subject_key("t1", "s1"))
        ring.seal_templates("t1", "s1", [("tpl1", "m@1", _vec(1))])
        raise RuntimeError("the commit failed")
    assert ring.versions_in_use() == {} and _intents(ring) == {}
    # An error at commit can hide a commit that happened: then the key is kept.
    used.add("t1/s2")
    with pytest.raises(RuntimeError), ring.creating("enrol") as new:
        new.append(ring.subject_key("t1", "s2"))
        ring.seal_templates("t1", "s2", [("tpl1", "m@1", _vec(1))])
        raise RuntimeError("connection lost during COMMIT")
    assert ring.versions_in_use() == {1: 1} and _intents(ring) == {}
    with ring.creating("enrol") as new:
        new.append(ring.subject_key("t1", "s3"))
        ring.seal_templates("t1", "s3", [("tpl1", "m@1", _vec(1))])
    assert ring.versions_in_use() == {1: 2} and _intents(ring) == {}


def test_orphans_are_reported_and_purged_only_on_request(ring: KeyRing) -> None:
    _journal(ring, used={"t1/s1"})
    for s in ("s1", "s2"):
        ring.seal_templates("t1", s, [("tpl", "m@1", _vec(1))])
    ring.store.clear_intents(["t1/s1", "t1/s2"])  # e.g. keys left by a version without the journal
    assert ring.orphan_ids() == ["t1/s2"]
    report = ring.recover(timedelta(0), orphans=True)
    assert (report.orphans, report.orphans_purged, ring.versions_in_use()) == (1, 0, {1: 2})
    report = ring.recover(timedelta(0), purge_orphans=True)
    assert (report.orphans, report.orphans_purged, ring.versions_in_use()) == (1, 1, {1: 1})


def test_a_key_database_without_the_journal_still_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    data_keys.create(engine)  # the key database as it was before the journal
    kek = LocalKeyFileProvider(tmp_path / "kek.json", create=True)
    dek = b"\x05" * 32
    wrapped = kek.wrap(dek, b"facewarden-data-key-v1|t1/s1")
    with engine.begin() as conn:
        conn.execute(insert(data_keys).values(key_id="t1/s1", kek_provider="local", kek_version=1,
                                              wrapped=wrapped.blob, created_at=datetime.now(UTC)))
    engine.dispose()
    store = DataKeyStore(make_datakey_engine(url), kek)
    assert store.get("t1/s1") == dek and store.intents() == []


def test_key_ids_map_to_the_records_that_use_them() -> None:
    assert key_uses("default/5f0c") == [("subject", ("default", "5f0c"))]
    assert key_uses("le-request/r1") == [("probe", ("r1",)), ("subject", ("le-request", "r1"))]
    assert key_uses("liveness/x") == [("liveness", ("x",)), ("subject", ("liveness", "x"))]
    assert key_uses("a/b/c") == [("subject", ("a/b", "c"))] and key_uses("nokey") == []
