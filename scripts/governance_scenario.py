"""End to end, over real HTTPS: consent enrolment, a payment verification, a police request, its review, a
search with double confirmation, a consent withdrawal, the transparency report, and the audit log verified.

Run it with `make scenario` (or `.venv/bin/python scripts/governance_scenario.py [--keep DIR]`). It makes a
throw-away FACEWARDEN_HOME, sets up three tenants with the CLI (a bank, a driving-licence agency that
administers a face database, a police force), starts `facewarden serve` and then acts only through the API,
as each person would. It reads the photos from ../shared/faces (or $FACEWARDEN_SHARED/faces).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACEWARDEN_SHARED", REPO.parent / "shared")) / "faces" / "people"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def show(obj: Any) -> None:
    print("   " + json.dumps(obj, default=str)[:600], flush=True)


class Setup:
    """The local administrator's CLI on the server: tenants' people and their keys."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def cli(self, *args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "facewarden.cli", *args], env=self.env, capture_output=True,
                           text=True, timeout=300)
        if r.returncode != 0:
            sys.exit(f"facewarden {' '.join(args)} failed: {r.stderr or r.stdout}")
        return r.stdout

    def key(self, tenant: str, name: str, *roles: str, person: bool = True) -> dict[str, str]:
        role_args = [a for r in roles for a in ("--role", r)]
        extra: list[str] = []
        if person:
            pid = json.loads(self.cli("person", "create", name, *role_args, "--tenant", tenant))["person_id"]
            extra = ["--person-id", pid]
        secret = json.loads(self.cli("apikey", "create", name, *role_args, "--tenant", tenant, *extra))["api_key"]
        return {"Authorization": f"Bearer {secret}"}


def expect(r: httpx.Response, status: int) -> dict[str, Any]:
    if r.status_code != status:
        sys.exit(f"unexpected {r.status_code} from {r.request.method} {r.request.url.path}: {r.text}")
    return r.json() if "json" in r.headers.get("content-type", "") else {"text": r.text}


def photo(rel: str) -> tuple[str, bytes]:
    path = FACES / rel
    return path.name, path.read_bytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="use this FACEWARDEN_HOME and keep it (report files too)")
    args = parser.parse_args()
    if not (FACES / "train").is_dir():
        sys.exit(f"The shared face photos are missing at {FACES}; put shared/ beside the repository.")
    home = args.keep or Path(tempfile.mkdtemp(prefix="facewarden-scenario-")) / "home"
    # The walk-through shows governance with photos; a recorded clip cannot answer a fresh random liveness
    # challenge, so here the purposes need no liveness session (tests/test_liveness_api.py covers liveness).
    env = {**os.environ, "FACEWARDEN_HOME": str(home), "FACEWARDEN_WORKERS": "2",
           "FACEWARDEN_CONTROLLER_NAME": "Example Bank plc", "FACEWARDEN_LIVENESS_REQUIRED_PURPOSES": "[]"}
    setup = Setup(env)

    step("Set-up by the local administrator (CLI): tenants, people, keys")
    setup.cli("init")
    bank_op = setup.key("default", "Bank enrolment desk", "operator", person=False)
    terminal = setup.key("default", "Payment terminal 7", "verifier", person=False)
    dmv_admin = setup.key("dmv", "Dana (DMV administrator)", "admin")
    dmv_op = setup.key("dmv", "DMV licensing office", "operator", person=False)
    reviewer_1 = setup.key("dmv", "Rita (DMV face examiner)", "reviewer")
    reviewer_2 = setup.key("dmv", "Raj (DMV face examiner)", "reviewer")
    dmv_auditor = setup.key("dmv", "DMV privacy office", "auditor")
    investigator = setup.key("police", "Det. Ivy (Metro Police)", "investigator")
    print("   tenants: default (a bank), dmv (administers the driving-licence gallery), police")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "facewarden.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context(cafile=str(home / "tls" / "cert.pem"))
    base = f"https://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{base}/v1/health", verify=ctx).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            sys.exit("the server did not start")
        with httpx.Client(base_url=base, verify=ctx, timeout=120) as api:
            run(api, bank_op, terminal, dmv_admin, dmv_op, reviewer_1, reviewer_2, dmv_auditor, investigator, home)
    finally:
        server.terminate()
        server.wait(timeout=60)

    step("The audit log, checked against its signed tree heads and the witness")
    print("   " + setup.cli("audit", "verify").strip().replace("\n", "\n   "))
    print(f"\nDone. FACEWARDEN_HOME was {home}")
    return 0


def run(api: httpx.Client, bank_op: dict[str, str], terminal: dict[str, str], dmv_admin: dict[str, str],
        dmv_op: dict[str, str], reviewer_1: dict[str, str], reviewer_2: dict[str, str], dmv_auditor: dict[str, str],
        investigator: dict[str, str], home: Path) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    term = (datetime.now(UTC) + timedelta(days=365)).isoformat()

    step("1. The bank enrols a customer with written consent for payments, for one year")
    enrolled = expect(api.post("/v1/subjects", headers=bank_op, data={
        "subject": "customer-4711", "purpose": "payment", "legal_basis": "consent",
        "consent_given_at": datetime.now(UTC).isoformat(), "consent_method": "signed in-app release v3",
        "consent_text": "I agree that Example Bank uses a template of my face to approve my payments for one "
                        "year, after which it is destroyed.", "expires_at": term},
        files=[("images", photo("train/obama/obama.jpg")), ("images", photo("train/obama/obama2.jpg"))]), 201)
    show({k: enrolled[k] for k in ("subject", "purpose", "legal_basis", "expires_at", "retain_until")})
    credential = {"Authorization": f"Bearer {enrolled['subject_credential']}"}

    step("2. A payment terminal verifies the customer for a payment (decision only, no score)")
    show(expect(api.post("/v1/subjects/customer-4711/verify", headers=terminal, data={"purpose": "payment"},
                         files={"image": photo("test/obama1.jpg")}), 200))
    step("   ... and the same template cannot be used for another purpose")
    show(expect(api.post("/v1/subjects/customer-4711/verify", headers=terminal, data={"purpose": "login"},
                         files={"image": photo("test/obama1.jpg")}), 403))

    step("3. The DMV's database: a driving-licence purpose police may search by statute, its search policy")
    expect(api.put("/v1/purposes/driving-licence", headers=dmv_admin, json={
        "description": "Driver's licence photos (state licensing statute)", "legal_bases": ["law"],
        "retention_days": 1095, "subject_category": "licence holders", "law_enforcement_searchable": True}), 200)
    show(expect(api.put("/v1/le/policy", headers=dmv_admin, json={
        "allowed_uses": ["serious-crime", "threat-to-life", "missing-person"], "allow_own_agency_review": False,
        "searches_per_grant": 2, "grant_days": 14, "max_candidates": 5}), 200))
    for person, pics in (("licence-0001", ["train/obama/obama.jpg"]), ("licence-0002", ["train/biden/biden.jpg"]),
                         ("licence-0003", ["train/kit_harington/john1.jpeg"])):
        expect(api.post("/v1/subjects", headers=dmv_op, data={
            "subject": person, "purpose": "driving-licence", "legal_basis": "law"},
            files=[("images", photo(p)) for p in pics]), 201)
    print("   3 licence holders enrolled")

    step("4. A detective files a written request to the DMV (court order), with the probe photo")
    request = expect(api.post("/v1/le/requests", headers=investigator, data={
        "administering_tenant": "dmv", "case_number": "MPD-2026-0815", "offence": "armed robbery",
        "narrative": "CCTV still of the suspect at the scene, 14 Nov 2026, 21:40.",
        "authorised_use": "serious-crime", "basis_kind": "court-order", "court_order_ref": "CR-26-4471",
        "max_candidates": 3}, files={"probe": photo("test/obama1.jpg")}), 201)
    show({k: request.get(k) for k in ("request_id", "status", "case_number")})
    step("   ... searching before approval is refused")
    show(expect(api.post(f"/v1/le/requests/{request['request_id']}/search", headers=investigator), 403))

    step("5. A DMV face examiner reviews and approves it: a grant for this case, 2 searches, 14 days")
    show(expect(api.post(f"/v1/le/requests/{request['request_id']}/review", headers=reviewer_1,
                         json={"approve": True, "reason": "Court order CR-26-4471 checked; serious crime."}), 200))

    step("6. The detective runs the search: investigative leads, not identifications")
    search = expect(api.post(f"/v1/le/requests/{request['request_id']}/search", headers=investigator), 200)
    show(search)
    lead = search["candidates"][0]

    step("7. Two different examiners must confirm a lead; one cannot confirm twice")
    show(expect(api.post(f"/v1/le/candidates/{lead['candidate_id']}/confirm", headers=reviewer_1), 200))
    show(expect(api.post(f"/v1/le/candidates/{lead['candidate_id']}/confirm", headers=reviewer_1), 409))
    show(expect(api.post(f"/v1/le/candidates/{lead['candidate_id']}/confirm", headers=reviewer_2), 200))

    step("8. The bank customer withdraws consent with their own credential: the template is destroyed")
    show(expect(api.post("/v1/me/withdraw-consent", headers=credential), 200))
    show(expect(api.post("/v1/subjects/customer-4711/verify", headers=terminal, data={"purpose": "payment"},
                         files={"image": photo("test/obama1.jpg")}), 404))

    step("9. The DMV publishes its transparency report (JSON, CSV, HTML with a chart)")
    period = {"since": started.isoformat(), "until": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    report = expect(api.get("/v1/reports/transparency", headers=dmv_auditor, params=period), 200)
    show({"agencies": report["agencies"]})
    for fmt in ("csv", "html"):
        r = api.get("/v1/reports/transparency", headers=dmv_auditor, params={**period, "format": fmt})
        out = home / f"transparency.{fmt}"
        out.write_text(r.text)
        print(f"   written {out}")
    record = expect(api.get("/v1/reports/processing-record", headers=dmv_auditor), 200)
    print(f"   Art. 30 record: {len(record['processing_activities'])} processing activities")


if __name__ == "__main__":
    raise SystemExit(main())
