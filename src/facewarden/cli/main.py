"""`facewarden` CLI: the same use cases as the HTTP API, run by the local administrator.

This module holds the root app, `init` and `serve`, and wires in the command groups of the sibling modules.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from facewarden.cli import subjects
from facewarden.cli.audit import audit_app, witness_app
from facewarden.cli.common import open_service, reported
from facewarden.cli.evaluation import eval_app
from facewarden.cli.keys import apikey_app, keys_app, person_app
from facewarden.cli.reports import report_app, retention
from facewarden.config import Settings
from facewarden.service import LOCAL_ADMIN

app = typer.Typer(help="FaceWarden: face recognition that protects the faces it holds.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


@app.command()
def init(new_admin_key: Annotated[bool, typer.Option(help="Issue another admin API key")] = False) -> None:
    """Create the data directory, key file, database and TLS certificate; print the first admin API key."""
    from facewarden.api.tls import ensure_self_signed

    settings = Settings()
    first = not settings.resolved_key_file.exists() and settings.key_provider == "local"
    with reported():
        service = open_service(settings, create=True)
    cert, _ = ensure_self_signed(settings.tls_dir)
    typer.echo(f"FaceWarden home: {settings.home}")
    typer.echo(f"TLS certificate: {cert}")
    if first or new_admin_key:
        person = service.accounts.create_person(LOCAL_ADMIN, name="initial administrator",
                                                person_roles={"admin", "operator"})
        _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name="initial-admin",
                                                    key_roles={"admin", "operator"}, person_id=person)
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
    service = open_service(settings)
    skipped = service.matching.refresh_gallery(force=True)
    typer.echo(f"Gallery loaded: {service.gallery.size()} templates ({skipped} subjects could not be decrypted)")
    ssl: dict[str, Any] = {}
    if settings.tls:
        cert, key = ensure_self_signed(settings.tls_dir)
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    else:
        typer.echo("WARNING: TLS is off (FACEWARDEN_TLS=false); face photos will cross the network in clear.",
                   err=True)
    stop_signer = service.auditing.start_signer(settings.audit_sign_interval_s)
    stop_retention = service.retention.start(settings.retention_interval_s)

    def shutdown() -> None:
        stop_signer.set()
        stop_retention.set()
        service.auditing.sign_head(LOCAL_ADMIN)  # the last requests are covered by a head at the witnesses

    # uvicorn re-raises SIGTERM after its graceful shutdown, so this runs in the app's lifespan, not in `finally`.
    uvicorn.run(create_app(service, on_shutdown=shutdown), host=host or settings.host, port=port or settings.port,
                log_level="info", **ssl)


# Registration order is the order of `--help`: commands first, then the groups.
for _command in (*subjects.COMMANDS, retention):
    app.command()(_command)
app.add_typer(audit_app, name="audit")
app.add_typer(witness_app, name="witness")
app.add_typer(keys_app, name="keys")
app.add_typer(person_app, name="person")
app.add_typer(apikey_app, name="apikey")
app.add_typer(eval_app, name="eval")
app.add_typer(report_app, name="report")
