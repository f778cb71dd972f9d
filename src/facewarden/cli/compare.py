"""`facewarden compare A B --purpose P --legal-basis L`: are two photos the same person? Nothing is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facewarden.cli.common import open_service, print_json, read_file, reported, require_files
from facewarden.service import LOCAL_ADMIN


def compare(a: Annotated[Path, typer.Argument(help="The first photo (a live capture, say)")],
            b: Annotated[Path, typer.Argument(help="The second photo (an identity document's, say)")],
            purpose: Annotated[str, typer.Option(help="Why you compare: a purpose defined in the tenant")],
            legal_basis: Annotated[str, typer.Option(help="consent, contract, law, vital-interest or public-task")],
            liveness_session: Annotated[str | None, typer.Option(help="A passed liveness session, where the "
                                                                      "purpose requires one: started without a "
                                                                      "subject, with one of these two photos sent "
                                                                      "as its reference")] = None) -> None:
    """1:1 between two photos, with the face used and the quality of each; nothing is stored but the audit entry.
    Exit code 0 on a match, 1 on no match, 2 on an error."""
    require_files([a, b])
    images = read_file(a), read_file(b)
    service = open_service()
    with reported():
        result = service.comparing.compare(LOCAL_ADMIN, *images, purpose=purpose, legal_basis=legal_basis,
                                           liveness_session=liveness_session)
    print_json(result.as_dict())
    raise typer.Exit(0 if result.match else 1)
