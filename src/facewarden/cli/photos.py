"""`facewarden add-photos SUBJECT PHOTO...`: more photos for an enrolled subject (same person only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facewarden.cli.common import open_service, print_json, read_file, reported, require_files
from facewarden.service import LOCAL_ADMIN


def add_photos(subject: Annotated[str, typer.Argument(help="The enrolled subject's reference")],
               photos: Annotated[list[Path], typer.Argument(help="1-10 more photos of the same person")]) -> None:
    """Add photos to an enrolled subject, under its existing data key; photos of anyone else are refused."""
    require_files(photos)
    images = [read_file(p) for p in photos]
    service = open_service()
    with reported():
        print_json(service.matching.add_photos(LOCAL_ADMIN, subject, images))
