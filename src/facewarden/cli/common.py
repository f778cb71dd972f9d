"""What every CLI command shares: building the service, printing JSON, reporting errors, reading secrets and files."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

import typer

from facewarden.config import Settings
from facewarden.errors import FaceWardenError, InvalidInput, Unavailable
from facewarden.service import FaceService, build_service


def _database_error(exc: Exception, settings: Settings) -> Unavailable:
    """One line that says which database could not be used and what to do, instead of a driver traceback."""
    from sqlalchemy.engine import make_url

    urls = [make_url(settings.resolved_database_url)] + ([make_url(settings.vault_url)] if settings.vault_url else [])
    shown = ", ".join(u.render_as_string(hide_password=True) for u in urls)
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0].removeprefix("connection failed: ")
    todo = "check that the database server runs and the database exists"
    for u in urls:  # the usual first-run case: name the exact command that creates it
        if u.get_backend_name() == "postgresql" and f'database "{u.database}" does not exist' in cause:
            todo = (f"create it (`createdb -h {u.host or 'localhost'} -p {u.port or 5432} "
                    f"-U {u.username or 'postgres'} {u.database}`)")
    return Unavailable(f"the database cannot be used ({shown}): {cause}. To fix: {todo}, or correct "
                       "FACEWARDEN_DATABASE_URL / FACEWARDEN_VAULT_URL; then run the command again.",
                       code="database_unavailable")


def open_service(settings: Settings | None = None, *, create: bool = False) -> FaceService:
    """Build the service; an unreachable or missing database ends the command with one line and exit code 2."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    settings = settings or Settings()
    try:
        return build_service(settings, create=create)
    except (DBAPIError, ArgumentError, NoSuchModuleError) as exc:
        fail(_database_error(exc, settings))
    except FaceWardenError as exc:
        fail(exc)


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def fail(exc: FaceWardenError) -> NoReturn:
    """Exit code 2 on an error, with its stable code: scripts tell errors from a plain 'no' (exit 1)."""
    typer.echo(f"error ({exc.code}): {exc.message}", err=True)
    raise typer.Exit(2)


def _file_error(exc: OSError) -> InvalidInput:
    where = f"{exc.filename}: " if exc.filename else ""
    return InvalidInput(f"{where}{exc.strerror or exc}", code="file_unreadable")


@contextmanager
def reported() -> Iterator[None]:
    """Report a FaceWardenError, or a file that cannot be read or written, raised inside the block with `fail`:
    one line and exit code 2, never a traceback and never the exit code 1 that means 'no match'."""
    try:
        yield
    except FaceWardenError as exc:
        fail(exc)
    except OSError as exc:
        fail(_file_error(exc))


def read_file(path: Path) -> bytes:
    """The bytes of a file named on the command line, or a one-line error (exit 2) that names it."""
    if path.is_dir():
        fail(InvalidInput(f"{path}: is a folder; give a file", code="file_unreadable"))
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(_file_error(exc))


def require_files(paths: list[Path]) -> None:
    """Check every named file before any work starts, so a typo in the tenth photo costs nothing."""
    for path in paths:
        if not path.is_file():
            why = "is a folder; give a file" if path.is_dir() else "no such file"
            fail(InvalidInput(f"{path}: {why}", code="file_unreadable"))
        if not os.access(path, os.R_OK):
            fail(InvalidInput(f"{path}: permission denied", code="file_unreadable"))


def read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def write_private(path: Path, write: Callable[[TextIO], object]) -> None:
    """Create or truncate `path` readable by its owner only (it holds personal data), then `write(fh)`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        fail(_file_error(exc))
    with os.fdopen(fd, "w") as fh:
        write(fh)
