"""The tamper-evident audit log (`audit`) and a witness for another party's log (`witness`)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from facewarden.cli.common import open_service, print_json, read_file, reported, write_private
from facewarden.errors import FaceWardenError
from facewarden.service import LOCAL_ADMIN

if TYPE_CHECKING:
    from facewarden.audit import AuditQuery, LogPublicKey

audit_app = typer.Typer(help="The tamper-evident audit log: verify, query, export, sign.", no_args_is_help=True)
witness_app = typer.Typer(help="Run a witness for another party's audit log.", no_args_is_help=True)


def _audit_filters(actor: str | None, subject_id: str | None, case: str | None, operation: str | None,
                   since: datetime | None, until: datetime | None, tenant: str | None, limit: int) -> AuditQuery:
    from facewarden.audit import AuditQuery
    from facewarden.audit.entries import utc_timestamp

    return AuditQuery(tenant_id=tenant, actor=actor, subject_id=subject_id, case_id=case, operation=operation,
                      since=utc_timestamp(since) if since else None, until=utc_timestamp(until) if until else None,
                      limit=limit)


def _load_key(path: Path | None) -> LogPublicKey | None:
    from facewarden.audit import LogPublicKey

    if path is None:
        return None
    with reported():  # a file that is no PEM key: one line, exit 2
        return LogPublicKey.from_pem(read_file(path))


@audit_app.command("verify")
def audit_verify(
    public_key: Annotated[Path | None, typer.Option(help="The log's public key (PEM) from a trusted copy; "
                                                         "default: derived from the signing key file")] = None,
    witness: Annotated[list[str] | None, typer.Option(help="More witnesses to check: files or https URLs")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check every entry against the signed tree heads and the witness copies; name any tampering.
    Exit code 0 when the log is intact, 1 when tampering was found, 2 on an error."""
    with reported():
        report = open_service().auditing.verify_log(LOCAL_ADMIN, public_key=_load_key(public_key),
                                                    extra_witnesses=list(witness or []))
    if json_out:
        print_json(report.to_json())
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
    with reported():
        print_json(open_service().auditing.sign_head(LOCAL_ADMIN))


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the log's public key (PEM). Publish it: auditors pin it to check exports."""
    with reported():
        typer.echo(open_service().auditing.public_key_pem(), nl=False)


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
    with reported():
        rows = open_service().auditing.query(LOCAL_ADMIN, q, subject=subject)
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
    q = _audit_filters(None, subject_id, case, None, since, until, tenant, limit)
    with reported():
        bundle = open_service().auditing.export(LOCAL_ADMIN, q)
    write_private(out, lambda fh: json.dump(bundle, fh, indent=1))
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

    data, key = read_file(bundle), _load_key(public_key)
    try:
        report = verify_export(json.loads(data), key)
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

    # A witness is its own small server with its own key; it holds no FaceWarden service.
    with reported():
        ledger = WitnessLedger(directory, [LogPublicKey.from_pem(read_file(p)) for p in log_key],
                               LogSigner.from_file(directory / "witness-key.pem", create=True))
    ssl: dict[str, Any] = {}
    if tls:
        cert, key = ensure_self_signed(directory / "tls")
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    typer.echo(f"Witness {ledger.signer.log_id} following {len(log_key)} log(s)")
    uvicorn.run(create_witness_app(ledger), host=host, port=port, log_level="info", **ssl)
