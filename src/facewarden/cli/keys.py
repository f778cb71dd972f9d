"""Key-encryption keys (`keys`), API keys (`apikey`) and the people they belong to (`person`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from tqdm import tqdm

from facewarden.cli.common import open_service, print_json, reported
from facewarden.service import LOCAL_ADMIN

keys_app = typer.Typer(help="Key-encryption keys: status, rotation, retirement.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)
person_app = typer.Typer(help="People inside a tenant, whose API keys carry their roles.", no_args_is_help=True)

_ROLES_HELP = "admin, operator, verifier, auditor, reviewer, investigator, metrics (a scraper: /metrics only)"


@keys_app.command("status")
def keys_status() -> None:
    """KEK versions, how many data keys each wraps, pending key intents and orphan data keys."""
    with reported():
        print_json(open_service().keys.status(LOCAL_ADMIN))


@keys_app.command("rotate")
def keys_rotate(
    retire_old: Annotated[bool, typer.Option(help="Destroy KEK versions no longer in use")] = False,
) -> None:
    """New KEK version; every data key is rewrapped (templates are not re-encrypted)."""
    service = open_service()
    bar = tqdm(desc="rewrapping", unit="key", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(1)

    with reported():
        result = service.keys.rotate(LOCAL_ADMIN, retire_old=retire_old, progress=progress)
    bar.close()
    print_json(result)


@keys_app.command("recover")
def keys_recover(
    purge_orphans: Annotated[bool, typer.Option(help="Also destroy data keys nothing uses and no intent explains "
                                                     "(check the database URL first: a wrong one makes every key "
                                                     "look unused)")] = False,
    grace_s: Annotated[float | None, typer.Option(help="Treat intents older than this as abandoned "
                                                       "(default FACEWARDEN_KEY_RECOVERY_GRACE_S)")] = None,
) -> None:
    """Finish or undo key-store changes a crash left half-way (the server also does this at start-up and on a
    schedule); report orphan data keys."""
    with reported():
        print_json(open_service().keys.recover(LOCAL_ADMIN, orphans=True, purge_orphans=purge_orphans,
                                               grace_s=grace_s))


@keys_app.command("retire")
def keys_retire() -> None:
    """Destroy every KEK version that no data key uses any more."""
    with reported():
        print_json({"retired": open_service().keys.retire_unused(LOCAL_ADMIN)})


@apikey_app.command("create")
def apikey_create(
    name: str,
    role: Annotated[list[str], typer.Option(help=_ROLES_HELP)],
    person_id: Annotated[str | None, typer.Option(help="The person it belongs to (needed for admin, reviewer, "
                                                       "investigator)")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: default)")] = None,
) -> None:
    """Issue an API key; the secret is printed once."""
    with reported():
        key_id, secret = open_service().accounts.create_api_key(LOCAL_ADMIN, name=name, key_roles=set(role),
                                                                person_id=person_id, tenant_id=tenant)
    print_json({"id": key_id, "api_key": secret, "roles": sorted(role)})


@person_app.command("create")
def person_create(
    name: str,
    role: Annotated[list[str], typer.Option(help=_ROLES_HELP)],
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: default)")] = None,
) -> None:
    """Add a named person to a tenant; then issue their API key with `apikey create --person-id`."""
    with reported():
        person_id = open_service().accounts.create_person(LOCAL_ADMIN, name=name, person_roles=set(role),
                                                          tenant_id=tenant)
    print_json({"person_id": person_id, "roles": sorted(role), "tenant": tenant or LOCAL_ADMIN.tenant_id})
