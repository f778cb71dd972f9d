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
from facewarden.cli.compare import compare
from facewarden.cli.evaluation import calibrate, calibrations, eval_app
from facewarden.cli.keys import apikey_app, keys_app, person_app
from facewarden.cli.photos import add_photos
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
    service = open_service(settings, create=True)  # an unreachable database: one line, exit 2
    cert, _ = ensure_self_signed(settings.tls_dir)
    typer.echo(f"FaceWarden home: {settings.home}")
    typer.echo(f"TLS certificate: {cert}")
    # "First" means no administrator key exists yet, not "the key file is new": an init that failed after
    # creating the key file (say, the database was missing) still prints the first key when run again.
    if new_admin_key or not service.accounts.admin_key_exists(LOCAL_ADMIN.tenant_id):
        with reported():
            person = service.accounts.create_person(LOCAL_ADMIN, name="initial administrator",
                                                    person_roles={"admin", "operator"})
            _, secret = service.accounts.create_api_key(LOCAL_ADMIN, name="initial-admin",
                                                        key_roles={"admin", "operator"}, person_id=person)
        typer.echo("Admin API key (shown once, store it in your secret manager):")
        typer.echo(secret)
    else:
        typer.echo("An administrator key exists already (not shown again); `facewarden init --new-admin-key` "
                   "issues another.")



@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None, port: Annotated[int | None, typer.Option()] = None
) -> None:
    """Start the HTTPS API (OpenAPI docs at /docs)."""
    import uvicorn

    from facewarden.api import create_app
    from facewarden.api.connections import bound_tls_timeouts, configured, tune_malloc
    from facewarden.api.tls import ensure_self_signed, uvicorn_context_factory

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    service = open_service(settings)
    skipped = service.matching.refresh_gallery(force=True)
    typer.echo(f"Gallery loaded: {service.gallery.size()} templates ({skipped} subjects could not be decrypted)")
    ssl: dict[str, Any] = {}
    if settings.tls:
        cert, key = ensure_self_signed(settings.tls_dir)
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key), "ssl_context_factory": uvicorn_context_factory}
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
    # Our access log (route templates, no subject names or query strings) replaces uvicorn's; the protocol
    # closes connections that send no complete request head in time; freed upload buffers go back to the OS.
    tune_malloc()
    bound_tls_timeouts(settings.header_timeout_s)
    uvicorn.run(create_app(service, on_shutdown=shutdown), host=host or settings.host, port=port or settings.port,
                log_level="info", access_log=False, timeout_keep_alive=settings.keep_alive_s,
                http=configured(settings.header_timeout_s, settings.max_connections),
                h11_max_incomplete_event_size=16 * 1024, **ssl)


# Registration order is the order of `--help`: commands first, then the groups.
for _command in (*subjects.COMMANDS, add_photos, compare, calibrate, calibrations, retention):
    app.command()(_command)
app.add_typer(audit_app, name="audit")
app.add_typer(witness_app, name="witness")
app.add_typer(keys_app, name="keys")
app.add_typer(person_app, name="person")
app.add_typer(apikey_app, name="apikey")
app.add_typer(eval_app, name="eval")
app.add_typer(report_app, name="report")
