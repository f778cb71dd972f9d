"""Commands on one subject: enroll, verify, identify, unlock, erase, export (registered on the root app)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from facewarden.cli.common import open_service, print_json, read_secret, reported, write_private
from facewarden.service import LOCAL_ADMIN, EnrolRequest

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".pgm"}
_STAGE_UNITS = {"embedding": "photo", "enrolling": "subject"}


def _enrol_template(purpose: str, legal_basis: str, consent_method: str | None, consent_given_at: datetime | None,
                    expires_at: datetime | None, passcode: str | None) -> EnrolRequest:
    """What every subject of this run shares; enrol_many fills in the subject and its faces."""
    if legal_basis == "consent" and consent_method and consent_given_at is None:
        consent_given_at = datetime.now().astimezone()
    return EnrolRequest("", [], purpose, legal_basis, consent_given_at=consent_given_at,
                        consent_method=consent_method, expires_at=expires_at, passcode=passcode)


@contextmanager
def _progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A `progress(stage, done, total)` callback that shows one tqdm bar per stage on stderr (none below 2)."""
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():  # stages run one after the other: finish the last bar first
                bar.close()
            bars[stage] = tqdm(total=total, desc=stage, unit=_STAGE_UNITS.get(stage, "item"), file=sys.stderr,
                               disable=total < 2)
        bar = bars[stage]
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()


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
    service = open_service()
    passcode = read_secret("Passcode: ", True) if passcode_stdin else None
    if folder is None:
        if not subject or not photos:
            typer.echo("Give a SUBJECT and one or more PHOTOS, or --folder DIR.", err=True)
            raise typer.Exit(2)
        photos_by_subject = {subject: list(photos)}
    else:
        photos_by_subject = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
                             for d in sorted(folder.iterdir()) if d.is_dir()}
    template = _enrol_template(purpose, legal_basis, consent_method, consent_given_at, expires_at, passcode)
    with _progress_bars() as progress:
        result = service.matching.enrol_many(LOCAL_ADMIN, photos_by_subject, template, workers=workers,
                                             progress=progress)
    print_json(result)
    if not result["enrolled"]:
        raise typer.Exit(1)


def verify(subject: str, photo: Path,
           purpose: Annotated[str, typer.Option(help="Why you verify: the template's own purpose")] = "login") -> None:
    """1:1 verification. Exit code 0 on a match, 1 on no match, 2 on an error."""
    service = open_service()
    with reported():
        r = service.matching.verify(LOCAL_ADMIN, subject, photo.read_bytes(), purpose=purpose)
    print_json({"subject": subject, "match": r.match, "distance": round(r.distance or 0.0, 4),
                "threshold": r.threshold, "attempts_left": r.attempts_left, "locked": r.locked})
    raise typer.Exit(0 if r.match else 1)


def identify(photo: Path, all_faces: Annotated[bool, typer.Option(help="Identify every face in the photo")] = False,
             max_candidates: int = 5,
             purpose: Annotated[str, typer.Option(help="Search only templates enrolled for it")] = "login") -> None:
    """1:N identification: ranked candidates within the threshold, as JSON."""
    service = open_service()
    with reported():
        faces = service.matching.identify(LOCAL_ADMIN, photo.read_bytes(), purpose=purpose,
                                          max_candidates=max_candidates, all_faces=all_faces)
    print_json({"threshold": service.settings.match_threshold, "faces": [
        {"box": list(f.box), "candidates": [{"subject": c.subject, "distance": round(c.distance, 4)}
                                            for c in f.candidates]} for f in faces]})


def unlock(subject: str, passcode_stdin: Annotated[bool, typer.Option()] = False) -> None:
    """Lift a verification lock with the subject's passcode."""
    service = open_service()
    with reported():
        service.matching.unlock(LOCAL_ADMIN, subject, read_secret("Passcode: ", passcode_stdin))
    typer.echo(f"{subject}: unlocked")


def erase(subject: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False) -> None:
    """Erase a subject for good (GDPR Art. 17): its data key is destroyed."""
    if not yes:
        typer.confirm(f"Erase '{subject}' and destroy its data key? This cannot be undone", abort=True)
    with reported():
        print_json(open_service().rights.erase(LOCAL_ADMIN, subject))


def export(
    subject: str, out: Annotated[Path | None, typer.Option(help="Write to this file (mode 0600)")] = None
) -> None:
    """Export everything held on a subject (GDPR Art. 15/20) as JSON."""
    with reported():
        data = open_service().rights.export(LOCAL_ADMIN, subject)
    text = json.dumps(data, indent=2)
    if out is None:
        typer.echo(text)
    else:
        write_private(out, lambda fh: fh.write(text))
        typer.echo(f"written to {out}")


COMMANDS = (enroll, verify, identify, unlock, erase, export)
