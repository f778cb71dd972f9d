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

from facewarden.cli.common import (
    fail,
    open_service,
    print_json,
    read_file,
    read_secret,
    reported,
    require_files,
    write_private,
)
from facewarden.errors import FaceWardenError, InvalidInput
from facewarden.governance.policy import LAW_ENFORCEMENT
from facewarden.service import LOCAL_ADMIN, EnrolRequest, FaceService

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".pgm"}
_STAGE_UNITS = {"embedding": "photo", "enrolling": "subject"}
_PURPOSE_HELP = ("What the templates are for (a purpose of the tenant, e.g. device-unlock). Required: a template "
                 "matches only for its own purpose")


def _purposes(service: FaceService) -> dict[str, bool]:
    """The tenant's purposes the CLI can match for, each with whether it needs a liveness session."""
    with reported():
        listed = service.governance.list_purposes(LOCAL_ADMIN)
    return {p["name"]: bool(p["liveness_required"]) for p in listed if p["name"] != LAW_ENFORCEMENT}


def _require_purpose(service: FaceService, purpose: str | None) -> str:
    """No default purpose: the old default (login) needs liveness, which the CLI cannot provide, so a subject
    enrolled with the defaults could never be verified here. Name the choices instead of guessing."""
    if purpose:
        return purpose
    choices = ", ".join(f"{name} (needs liveness: API only)" if live else name
                        for name, live in sorted(_purposes(service).items()))
    fail(InvalidInput(f"give --purpose; this tenant's purposes: {choices}.", code="invalid_purpose"))


def _liveness_hint(exc: FaceWardenError) -> FaceWardenError:
    if exc.code == "liveness_required":
        exc.message += (" The CLI cannot run a liveness session: verify for this purpose through the API from "
                        "the device, or enrol for a purpose without liveness (such as device-unlock).")
    return exc


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
    purpose: Annotated[str | None, typer.Option(help=_PURPOSE_HELP)] = None,
    legal_basis: Annotated[str, typer.Option()] = "consent",
    consent_method: Annotated[str | None, typer.Option(help="How consent was given, e.g. 'signed form #123'")] = None,
    consent_given_at: Annotated[datetime | None, typer.Option()] = None,
    expires_at: Annotated[datetime | None, typer.Option()] = None,
    passcode_stdin: Annotated[bool, typer.Option(help="Read the subject's passcode from stdin")] = False,
    workers: Annotated[int | None, typer.Option(help="Processes for face embedding")] = None,
) -> None:
    """Enrol one subject from photos, or every sub-folder of --folder (with a progress bar)."""
    if folder is None:
        if not subject or not photos:
            typer.echo("error (invalid_request): give a SUBJECT and one or more PHOTOS, or --folder DIR.", err=True)
            raise typer.Exit(2)
        require_files(list(photos))
        photos_by_subject = {subject: list(photos)}
    else:
        if not folder.is_dir():
            fail(InvalidInput(f"{folder}: no such folder", code="file_unreadable"))
        photos_by_subject = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
                             for d in sorted(folder.iterdir()) if d.is_dir()}
    service = open_service()
    purpose = _require_purpose(service, purpose)
    passcode = read_secret("Passcode: ", True) if passcode_stdin else None
    template = _enrol_template(purpose, legal_basis, consent_method, consent_given_at, expires_at, passcode)
    with _progress_bars() as progress, reported():
        result = service.matching.enrol_many(LOCAL_ADMIN, photos_by_subject, template, workers=workers,
                                             progress=progress)
    print_json(result)
    if folder is None and not result["enrolled"]:  # one subject refused: an error (2), told in one line
        reasons = "; ".join(s["reason"] for s in result["skipped"]) or "no photo held a usable face"
        typer.echo(f"error: '{subject}' was not enrolled: {reasons}", err=True)
        raise typer.Exit(2)
    if not result["enrolled"]:
        raise typer.Exit(1)


def verify(subject: str, photo: Path,
           purpose: Annotated[str | None, typer.Option(help="Why you verify: the template's own purpose "
                                                            "(required)")] = None) -> None:
    """1:1 verification. Exit code 0 on a match, 1 on no match, 2 on an error."""
    image = read_file(photo)
    service = open_service()
    purpose = _require_purpose(service, purpose)
    try:
        r = service.matching.verify(LOCAL_ADMIN, subject, image, purpose=purpose)
    except FaceWardenError as exc:
        fail(_liveness_hint(exc))
    print_json({"subject": subject, "match": r.match, "distance": round(r.distance or 0.0, 4),
                "threshold": r.threshold, "threshold_source": r.threshold_source, "attempts_left": r.attempts_left,
                "locked": r.locked})
    raise typer.Exit(0 if r.match else 1)


def identify(photo: Path, all_faces: Annotated[bool, typer.Option(help="Identify every face in the photo")] = False,
             max_candidates: int = 5,
             purpose: Annotated[str | None, typer.Option(help="Search only templates enrolled for it (default: "
                                                              "each purpose in turn, every search audited)")] = None,
             ) -> None:
    """1:N identification: ranked candidates within the threshold, as JSON (with the purposes searched)."""
    image = read_file(photo)
    service = open_service()
    searched = [purpose] if purpose else sorted(_purposes(service))
    # One search per purpose: a template matches only for its own purpose, and each search is its own audit entry.
    by_box: dict[tuple[int, ...], list[tuple[float, str, str]]] = {}
    with reported():
        for name in searched:
            for f in service.matching.identify(LOCAL_ADMIN, image, purpose=name, max_candidates=max_candidates,
                                               all_faces=all_faces):
                by_box.setdefault(tuple(f.box), []).extend((c.distance, c.subject, name) for c in f.candidates)
    faces = [{"box": list(box), "candidates": [{"subject": s, "purpose": p, "distance": round(d, 4)}
                                               for d, s, p in sorted(cands)[:max_candidates]]}
             for box, cands in by_box.items()]
    thresholds = {name: service.calibration.threshold(LOCAL_ADMIN, name) for name in searched}
    print_json({"threshold": max((t.value for t in thresholds.values()), default=service.settings.match_threshold),
                "thresholds": {n: {"threshold": t.value, "source": t.source} for n, t in thresholds.items()},
                "purposes_searched": searched, "faces": faces})
    if not any(f["candidates"] for f in faces):
        typer.echo(f"no match: no enrolled face within the threshold for {', '.join(searched) or 'any purpose'}",
                   err=True)


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
