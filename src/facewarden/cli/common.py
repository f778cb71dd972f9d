"""What every CLI command shares: building the service, printing JSON, reporting errors, reading secrets."""

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
from facewarden.errors import FaceWardenError
from facewarden.service import FaceService, build_service


def open_service(settings: Settings | None = None, *, create: bool = False) -> FaceService:
    return build_service(settings or Settings(), create=create)


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def fail(exc: FaceWardenError) -> NoReturn:
    """Exit code 2 on an error, with its stable code: scripts tell errors from a plain 'no' (exit 1)."""
    typer.echo(f"error ({exc.code}): {exc.message}", err=True)
    raise typer.Exit(2)


@contextmanager
def reported() -> Iterator[None]:
    """Report a FaceWardenError raised inside the block with `fail`."""
    try:
        yield
    except FaceWardenError as exc:
        fail(exc)


def read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return getpass.getpass(prompt)


def write_private(path: Path, write: Callable[[TextIO], object]) -> None:
    """Create or truncate `path` readable by its owner only (it holds personal data), then `write(fh)`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        write(fh)
