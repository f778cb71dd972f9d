"""`facewarden` CLI: the same use cases as the HTTP API, run by the local administrator."""

from __future__ import annotations

import getpass
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from facewarden.config import Settings
from facewarden.errors import FaceWardenError
from facewarden.service import EnrolRequest, FaceService, build_service
from facewarden.service.core import LOCAL_ADMIN

app = typer.Typer(help="FaceWarden: face recognition that protects the faces it holds.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
keys_app = typer.Typer(help="Key-encryption keys: status, rotation, retirement.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)
eval_app = typer.Typer(help="Accuracy evaluation on a labelled folder of faces.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log: verify, query, export, sign.", no_args_is_help=True)
witness_app = typer.Typer(help="Run a witness for another party's audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(witness_app, name="witness")
app.add_typer(keys_app, name="keys")
person_app = typer.Typer(help="People inside a tenant, whose API keys carry their roles.", no_args_is_help=True)
app.add_typer(person_app, name="person")
app.add_typer(apikey_app, name="apikey")
app.add_typer(eval_app, name="eval")

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".pgm"}


def _service(create: bool = False) -> FaceService:
    return build_service(Settings(), create=create)


def _print(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _fail(exc: FaceWardenError) -> None:
    typer.echo(f"error ({exc.code}): {exc.message}", err=True)
    raise typer.Exit(2)


def _read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


@app.command()
def init(new_admin_key: Annotated[bool, typer.Option(help="Issue another admin API key")] = False) -> None:
    """Create the data directory, key file, database and TLS certificate; print the first admin API key."""
    from facewarden.api.tls import ensure_self_signed

    settings = Settings()
    first = not settings.resolved_key_file.exists() and settings.key_provider == "local"
    try:
        service = build_service(settings, create=True)
    except FaceWardenError as exc:
        _fail(exc)
        return
    cert, _ = ensure_self_signed(settings.tls_dir)
    typer.echo(f"FaceWarden home: {settings.home}")
    typer.echo(f"TLS certificate: {cert}")
    if first or new_admin_key:
        person = service.create_person(LOCAL_ADMIN, name="initial administrator", person_roles={"admin", "operator"})
        _, secret = service.create_api_key(LOCAL_ADMIN, name="initial-admin", key_roles={"admin", "operator"},
                                           person_id=person)
        typer.echo("Admin API key (shown once, store it in your secret manager):")
        typer.echo(secret)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None, port: Annotated[int | None, typer.Option()] = None
) -> None:
    """Start the HTTPS API (OpenAPI docs at /docs)."""
    import uvicorn

    from facewarden.api import create_app
    from facewarden.api.tls import ensure_self_signed

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    service = build_service(settings)
    skipped = service.refresh_gallery(force=True)
    typer.echo(f"Gallery loaded: {service.gallery.size()} templates ({skipped} subjects could not be decrypted)")
    ssl: dict[str, Any] = {}
    if settings.tls:
        cert, key = ensure_self_signed(settings.tls_dir)
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    else:
        typer.echo("WARNING: TLS is off (FACEWARDEN_TLS=false); face photos will cross the network in clear.",
                   err=True)
    stop_signer = service.audit.start_signer(settings.audit_sign_interval_s)
    stop_retention = service.start_retention(settings.retention_interval_s)

    def shutdown() -> None:
        stop_signer.set()
        stop_retention.set()
        service.audit.sign_head()  # the last requests are covered by a head at the witnesses

    # uvicorn re-raises SIGTERM after its graceful shutdown, so this runs in the app's lifespan, not in `finally`.
    uvicorn.run(create_app(service, on_shutdown=shutdown), host=host or settings.host, port=port or settings.port,
                log_level="info", **ssl)


def _enrol_request(subject: str, purpose: str, legal_basis: str, consent_method: str | None,
                   consent_given_at: datetime | None, expires_at: datetime | None,
                   passcode: str | None) -> EnrolRequest:
    if legal_basis == "consent" and consent_method and consent_given_at is None:
        consent_given_at = datetime.now().astimezone()
    return EnrolRequest(subject, [], purpose, legal_basis, consent_given_at=consent_given_at,
                        consent_method=consent_method, expires_at=expires_at, passcode=passcode)


@app.command()
def enroll(
    subject: Annotated[str | None, typer.Argument(help="Subject reference (omit with --folder)")] = None,
    photos: Annotated[list[Path] | None, typer.Argument(help="Photos of the subject")] = None,
    folder: Annotated[Path | None, typer.Option(help="Bulk: one sub-folder of photos per subject")] = None,
    purpose: Annotated[str, typer.Option()] = "login",
    legal_basis: Annotated[str, typer.Option()] = "consent",
    consent_method: Annotated[str | None, typer.Option(help="How consent was given, e.g. 'signed form #123'")] = None,
    consent_given_at: Annotated[datetime | None, typer.Option()] = None,
    expires_at: Annotated[datetime | None, typer.Option()] = None,
    passcode_stdin: Annotated[bool, typer.Option(help="Read the subject's passcode from stdin")] = False,
    workers: Annotated[int | None, typer.Option(help="Processes for face embedding")] = None,
) -> None:
    """Enrol one subject from photos, or every sub-folder of --folder (with a progress bar)."""
    from facewarden.vision.batch import EngineOptions, embed_files

    service = _service()
    s = service.settings
    passcode = _read_secret("Passcode: ", True) if passcode_stdin else None
    if folder is None:
        if not subject or not photos:
            typer.echo("Give a SUBJECT and one or more PHOTOS, or --folder DIR.", err=True)
            raise typer.Exit(2)
        jobs = {subject: list(photos)}
    else:
        jobs = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
                for d in sorted(folder.iterdir()) if d.is_dir()}
    paths = [p for ps in jobs.values() for p in ps]
    opts = EngineOptions.from_settings(s)
    faces: dict[Path, Any] = {}
    failed: list[dict[str, str]] = []
    with tqdm(total=len(paths), desc="embedding", unit="photo", file=sys.stderr, disable=len(paths) < 2) as bar:
        for res in embed_files(paths, opts, workers=workers or s.workers):
            if res.face is None:
                failed.append({"photo": str(res.path), "code": res.error_code or "", "error": res.error or ""})
            else:
                faces[res.path] = res.face
            bar.update(1)
    enrolled, skipped = [], []
    for name, ps in tqdm(jobs.items(), desc="enrolling", unit="subject", file=sys.stderr, disable=len(jobs) < 2):
        good = [faces[p] for p in ps if p in faces]
        if not good:
            skipped.append({"subject": name, "reason": "no usable photo"})
            continue
        req = _enrol_request(name, purpose, legal_basis, consent_method, consent_given_at, expires_at, passcode)
        try:
            enrolled.append(service.enrol(LOCAL_ADMIN, req, faces=good))
        except FaceWardenError as exc:
            skipped.append({"subject": name, "reason": exc.message})
    _print({"enrolled": enrolled, "skipped": skipped, "failed_photos": failed})
    if not enrolled:
        raise typer.Exit(1)


@app.command()
def verify(subject: str, photo: Path,
           purpose: Annotated[str, typer.Option(help="Why you verify: the template's own purpose")] = "login") -> None:
    """1:1 verification. Exit code 0 on a match, 1 on no match, 2 on an error."""
    service = _service()
    try:
        r = service.verify(LOCAL_ADMIN, subject, photo.read_bytes(), purpose=purpose)
    except FaceWardenError as exc:
        _fail(exc)
        return
    _print({"subject": subject, "match": r.match, "distance": round(r.distance or 0.0, 4), "threshold": r.threshold,
            "attempts_left": r.attempts_left, "locked": r.locked})
    raise typer.Exit(0 if r.match else 1)


@app.command()
def identify(photo: Path, all_faces: Annotated[bool, typer.Option(help="Identify every face in the photo")] = False,
             max_candidates: int = 5,
             purpose: Annotated[str, typer.Option(help="Search only templates enrolled for it")] = "login") -> None:
    """1:N identification: ranked candidates within the threshold, as JSON."""
    service = _service()
    try:
        faces = service.identify(LOCAL_ADMIN, photo.read_bytes(), purpose=purpose, max_candidates=max_candidates,
                                 all_faces=all_faces)
    except FaceWardenError as exc:
        _fail(exc)
        return
    _print({"threshold": service.settings.match_threshold, "faces": [
        {"box": list(f.box), "candidates": [{"subject": c.subject, "distance": round(c.distance, 4)}
                                            for c in f.candidates]} for f in faces]})


@app.command()
def unlock(subject: str, passcode_stdin: Annotated[bool, typer.Option()] = False) -> None:
    """Lift a verification lock with the subject's passcode."""
    service = _service()
    try:
        service.unlock(LOCAL_ADMIN, subject, _read_secret("Passcode: ", passcode_stdin))
    except FaceWardenError as exc:
        _fail(exc)
    typer.echo(f"{subject}: unlocked")


@app.command()
def erase(subject: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False) -> None:
    """Erase a subject for good (GDPR Art. 17): its data key is destroyed."""
    if not yes:
        typer.confirm(f"Erase '{subject}' and destroy its data key? This cannot be undone", abort=True)
    try:
        _print(_service().erase(LOCAL_ADMIN, subject))
    except FaceWardenError as exc:
        _fail(exc)


@app.command()
def export(
    subject: str, out: Annotated[Path | None, typer.Option(help="Write to this file (mode 0600)")] = None
) -> None:
    """Export everything held on a subject (GDPR Art. 15/20) as JSON."""
    try:
        data = _service().export(LOCAL_ADMIN, subject)
    except FaceWardenError as exc:
        _fail(exc)
        return
    text = json.dumps(data, indent=2)
    if out is None:
        typer.echo(text)
    else:
        import os

        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        typer.echo(f"written to {out}")


@keys_app.command("status")
def keys_status() -> None:
    """KEK versions and how many data keys each wraps."""
    _print(_service().key_status(LOCAL_ADMIN))


@keys_app.command("rotate")
def keys_rotate(
    retire_old: Annotated[bool, typer.Option(help="Destroy KEK versions no longer in use")] = False,
) -> None:
    """New KEK version; every data key is rewrapped (templates are not re-encrypted)."""
    service = _service()
    bar = tqdm(desc="rewrapping", unit="key", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    result = service.rotate_keys(LOCAL_ADMIN, retire_old=retire_old, progress=progress)
    bar.close()
    _print(result)


@keys_app.command("retire")
def keys_retire() -> None:
    """Destroy every KEK version that no data key uses any more."""
    _print({"retired": _service().retire_unused_keys(LOCAL_ADMIN)})


@apikey_app.command("create")
def apikey_create(
    name: str,
    role: Annotated[list[str], typer.Option(help="admin, operator, verifier, auditor, reviewer, investigator")],
    person_id: Annotated[str | None, typer.Option(help="The person it belongs to (needed for admin, reviewer, "
                                                       "investigator)")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: default)")] = None,
) -> None:
    """Issue an API key; the secret is printed once."""
    try:
        key_id, secret = _service().create_api_key(LOCAL_ADMIN, name=name, key_roles=set(role), person_id=person_id,
                                                   tenant_id=tenant)
    except FaceWardenError as exc:
        _fail(exc)
        return
    _print({"id": key_id, "api_key": secret, "roles": sorted(role)})


def _audit_filters(actor: str | None, subject_id: str | None, case: str | None, operation: str | None,
                   since: datetime | None, until: datetime | None, tenant: str | None, limit: int) -> Any:
    from facewarden.audit import AuditQuery
    from facewarden.audit.entries import utc_timestamp

    return AuditQuery(tenant_id=tenant, actor=actor, subject_id=subject_id, case_id=case, operation=operation,
                      since=utc_timestamp(since) if since else None, until=utc_timestamp(until) if until else None,
                      limit=limit)


def _load_key(path: Path | None) -> Any:
    from facewarden.audit import LogPublicKey

    return LogPublicKey.from_pem(path.read_bytes()) if path else None


@audit_app.command("verify")
def audit_verify(
    public_key: Annotated[Path | None, typer.Option(help="The log's public key (PEM) from a trusted copy; "
                                                         "default: derived from the signing key file")] = None,
    witness: Annotated[list[str] | None, typer.Option(help="More witnesses to check: files or https URLs")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check every entry against the signed tree heads and the witness copies; name any tampering.
    Exit code 0 when the log is intact, 1 when tampering was found, 2 on an error."""
    from facewarden.audit.witness import make_witness

    try:
        service = _service()
        extra = [make_witness(w, verify=service.settings.audit_witness_ca or True) for w in witness or []]
        report = service.audit.verify(_load_key(public_key), extra)
    except FaceWardenError as exc:
        _fail(exc)
        return
    if json_out:
        _print(report.to_json())
    else:
        typer.echo(f"{report.entries} entries, tree size {report.tree_size}, {report.heads_checked} stored heads and "
                   f"{report.witness_heads_checked} witness heads checked in {report.seconds:.1f} s")
        for w in report.warnings:
            typer.echo(f"warning: {w}")
        for f in report.findings:
            typer.echo(f"TAMPERED {f.kind}" + (f" at entry {f.seq}" if f.seq is not None else "") + f": {f.message}")
        typer.echo("OK: the log is intact." if report.ok else f"FAILED: {len(report.findings)} problem(s) found.")
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("sign")
def audit_sign() -> None:
    """Sign a tree head for the current size and hand it to the witnesses (run from cron if not serving)."""
    try:
        _print(_service().audit_sign_head(LOCAL_ADMIN))
    except FaceWardenError as exc:
        _fail(exc)


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the log's public key (PEM). Publish it: auditors pin it to check exports."""
    typer.echo(_service().audit.signer.pem(), nl=False)


@audit_app.command("query")
def audit_query(
    actor: Annotated[str | None, typer.Option(help="Who: the principal, e.g. apikey:<id>")] = None,
    subject: Annotated[str | None, typer.Option(help="The subject's reference (while it is enrolled)")] = None,
    subject_id: Annotated[str | None, typer.Option()] = None,
    case: Annotated[str | None, typer.Option()] = None,
    operation: Annotated[str | None, typer.Option()] = None,
    since: Annotated[datetime | None, typer.Option()] = None,
    until: Annotated[datetime | None, typer.Option()] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 1000,
) -> None:
    """Print matching entries as JSON lines."""
    q = _audit_filters(actor, subject_id, case, operation, since, until, tenant, limit)
    try:
        rows = _service().audit_query(LOCAL_ADMIN, q, subject=subject)
    except FaceWardenError as exc:
        _fail(exc)
        return
    for row in rows:
        typer.echo(json.dumps(row))


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="Write the bundle here (mode 0600)")],
    since: Annotated[datetime | None, typer.Option()] = None,
    until: Annotated[datetime | None, typer.Option()] = None,
    tenant: Annotated[str | None, typer.Option()] = None,
    subject_id: Annotated[str | None, typer.Option()] = None,
    case: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 10_000,
) -> None:
    """Export a period with its signed tree head and inclusion proofs, for an outside auditor."""
    import os

    q = _audit_filters(None, subject_id, case, None, since, until, tenant, limit)
    try:
        bundle = _service().audit_export(LOCAL_ADMIN, q)
    except FaceWardenError as exc:
        _fail(exc)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(bundle, fh, indent=1)
    typer.echo(f"{len(bundle['entries'])} entries, tree size {bundle['tree_head']['tree_size']}, written to {out}")


@audit_app.command("verify-export")
def audit_verify_export(
    bundle: Path,
    public_key: Annotated[Path | None, typer.Option(help="The log's public key (PEM) you got from the operator")]
    = None,
) -> None:
    """Check an exported period offline: signature, every entry's hash and inclusion proof. Needs no database.
    Exit code 0 when it verifies, 1 when it does not."""
    from facewarden.audit import verify_export

    try:
        report = verify_export(json.loads(bundle.read_text()), _load_key(public_key))
    except (FaceWardenError, KeyError, ValueError) as exc:
        typer.echo(f"error: the export is malformed ({exc})", err=True)
        raise typer.Exit(2) from None
    for w in report.warnings:
        typer.echo(f"warning: {w}")
    for f in report.findings:
        typer.echo(f"TAMPERED {f.kind}: {f.message}")
    typer.echo(f"{report.entries} entries checked against the signed tree head of size {report.tree_size}: "
               + ("OK" if report.ok else "FAILED"))
    raise typer.Exit(0 if report.ok else 1)


@witness_app.command("serve")
def witness_serve(
    directory: Annotated[Path, typer.Option("--dir", help="Where the witness keeps heads and its own key")],
    log_key: Annotated[list[Path], typer.Option(help="Public key (PEM) of each log this witness follows")],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8444,
    tls: Annotated[bool, typer.Option(help="Serve HTTPS with a self-signed certificate in --dir")] = True,
) -> None:
    """Keep other logs' signed tree heads; refuse any head that is not consistent with the ones seen before."""
    import uvicorn

    from facewarden.api.tls import ensure_self_signed
    from facewarden.api.witness_app import create_witness_app
    from facewarden.audit import LogPublicKey, LogSigner
    from facewarden.audit.witness import WitnessLedger

    ledger = WitnessLedger(directory, [LogPublicKey.from_pem(p.read_bytes()) for p in log_key],
                           LogSigner.from_file(directory / "witness-key.pem", create=True))
    ssl: dict[str, Any] = {}
    if tls:
        cert, key = ensure_self_signed(directory / "tls")
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    typer.echo(f"Witness {ledger.signer.log_id} following {len(log_key)} log(s)")
    uvicorn.run(create_witness_app(ledger), host=host, port=port, log_level="info", **ssl)


@person_app.command("create")
def person_create(
    name: str,
    role: Annotated[list[str], typer.Option(help="admin, operator, verifier, auditor, reviewer, investigator")],
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: default)")] = None,
) -> None:
    """Add a named person to a tenant; then issue their API key with `apikey create --person-id`."""
    try:
        person_id = _service().create_person(LOCAL_ADMIN, name=name, person_roles=set(role), tenant_id=tenant)
    except FaceWardenError as exc:
        _fail(exc)
        return
    _print({"person_id": person_id, "roles": sorted(role), "tenant": tenant or LOCAL_ADMIN.tenant_id})


report_app = typer.Typer(help="Reports: law-enforcement transparency, GDPR Art. 30 record.", no_args_is_help=True)
app.add_typer(report_app, name="report")


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
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
    from facewarden.governance import reports

    renderers = {"json": lambda r: json.dumps(r, indent=2) + "\n", "csv": reports.report_csv,
                 "html": reports.report_html}
    if fmt not in renderers:
        raise typer.BadParameter("--format must be json, csv or html")
    try:
        report = _service().transparency_report(LOCAL_ADMIN, since=since, until=until, tenant_id=tenant)
    except FaceWardenError as exc:
        _fail(exc)
        return
    _emit(renderers[fmt](report), out)


@report_app.command("processing-record")
def report_processing_record(
    tenant: Annotated[str | None, typer.Option(help="One tenant (default: every one)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or html")] = "json",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
) -> None:
    """The GDPR Art. 30 record of processing activities, from the live database and settings."""
    from facewarden.governance import reports

    try:
        record = _service().processing_record(LOCAL_ADMIN, tenant_id=tenant)
    except FaceWardenError as exc:
        _fail(exc)
        return
    _emit(reports.processing_record_html(record) if fmt == "html" else json.dumps(record, indent=2) + "\n", out)


@app.command()
def retention() -> None:
    """Run the retention job now: destroy templates past their consent term, purpose or retention period."""
    try:
        _print(_service().run_retention(LOCAL_ADMIN))
    except FaceWardenError as exc:
        _fail(exc)


@eval_app.command("pairs")
def eval_pairs(
    dataset_dir: Path,
    json_out: Annotated[Path, typer.Option("--json", help="Write the metrics here")],
    det: Annotated[Path | None, typer.Option(help="DET curve PNG (default: next to the JSON)")] = None,
    layout: Annotated[str, typer.Option(help="folders | prefix | auto")] = "auto",
    whole_image_fallback: Annotated[bool, typer.Option(help="Use the whole image when no face is detected "
                                                            "(tightly cropped sets such as ORL)")] = False,
    workers: Annotated[int | None, typer.Option()] = None,
) -> None:
    """All genuine/impostor pairs: EER, FNMR at FMR 1e-2/1e-3, rates at the threshold, rank-1, DET curve."""
    from facewarden.evaluation import evaluate_dataset
    from facewarden.vision.batch import EngineOptions

    s = Settings()
    opts = EngineOptions.from_settings(s)
    det_png = det or json_out.with_suffix(".png")
    result = evaluate_dataset(dataset_dir, threshold=s.match_threshold, opts=opts, workers=workers or s.workers,
                              layout=layout, whole_image_fallback=whole_image_fallback, det_png=det_png)
    json_out.write_text(json.dumps(result, indent=2))
    _print(result)
