"""Accuracy evaluation (`eval`) and calibration (`calibrate`): offline on labelled folders. `eval` needs no service,
database or keys; `calibrate` stores its operating points in the main database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facewarden.cli.common import fail, open_service, print_json, reported
from facewarden.config import Settings
from facewarden.errors import InvalidInput
from facewarden.service import LOCAL_ADMIN

eval_app = typer.Typer(help="Accuracy evaluation on a labelled folder of faces.", no_args_is_help=True)

Layout = Annotated[str, typer.Option(help="folders | prefix | auto")]
WholeImage = Annotated[bool, typer.Option(help="Use the whole image when no face is detected "
                                               "(tightly cropped sets such as ORL)")]
Cache = Annotated[Path | None, typer.Option(help="Private folder (e.g. under /tmp) caching each photo's embedding, "
                                                 "so a photo is embedded once across runs")]
Draws = Annotated[int, typer.Option(help="Bootstrap draws (identities resampled) for the 95 % intervals")]


def _check_dirs(dirs: list[Path]) -> None:
    for d in dirs:
        if not d.is_dir():
            fail(InvalidInput(f"{d}: no such folder", code="file_unreadable"))


@eval_app.command("pairs")
def eval_pairs(
    dataset_dirs: Annotated[list[Path], typer.Argument(help="One or more labelled folders (<person>/<photo>); "
                                                            "labels are kept apart by folder")],
    json_out: Annotated[Path, typer.Option("--json", help="Write the metrics here")],
    det: Annotated[Path | None, typer.Option(help="DET curve PNG (default: next to the JSON)")] = None,
    layout: Layout = "auto",
    whole_image_fallback: WholeImage = False,
    workers: Annotated[int | None, typer.Option()] = None,
    calibration: Annotated[Path | None, typer.Option(help="A `calibrate --json` report: check its thresholds on "
                                                          "the identities it did not tune on")] = None,
    target: Annotated[list[float] | None, typer.Option(help="Another target FMR to report (repeatable)")] = None,
    cache: Cache = None,
    draws: Draws = 200,
) -> None:
    """All genuine/impostor pairs: EER, FNMR at FMR 1e-3/1e-4 and each purpose's target with bootstrap intervals,
    end-to-end FNMR (failures to enrol count), rates at the threshold, rank-1, DET curve."""
    from facewarden.evaluation.calibration import evaluate_sets, load_sets, report_targets
    from facewarden.vision.batch import EngineOptions
    from facewarden.vision.engine import model_info

    _check_dirs(dataset_dirs)
    s = Settings()
    det_png = det or json_out.with_suffix(".png")
    with reported():
        cal = json.loads(calibration.read_text()) if calibration is not None else None
        data = load_sets(dataset_dirs, opts=EngineOptions.from_settings(s), workers=workers or s.workers,
                         cache=cache, layout=layout, whole_image_fallback=whole_image_fallback)
        result = evaluate_sets(data, threshold=s.match_threshold, model=model_info().label,
                               targets=report_targets(target), calibration=cal, det_png=det_png, draws=draws)
        json_out.write_text(json.dumps(result, indent=2))
    print_json(result)


def calibrate(
    dataset_dirs: Annotated[list[Path], typer.Argument(help="One or more labelled folders (<person>/<photo>)")],
    split_seed: Annotated[int | None, typer.Option(help="Tune on a random half of the identities (seeded) and "
                                                        "check the thresholds on the other half")] = None,
    tune_half: Annotated[str | None, typer.Option(help="Tune on the identities of even or odd index (sorted), "
                                                       "check on the others")] = None,
    target: Annotated[list[float] | None, typer.Option(help="Another target FMR to calibrate (repeatable)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report here (for "
                                                                 "`eval pairs --calibration`)")] = None,
    conservative: Annotated[bool, typer.Option(
        "--conservative/--point-estimate",
        help="Store the lower end of each threshold's 95 % interval (the default: the target then holds on new "
             "people with ~97.5 % confidence; the point estimate exceeded 1e-3 on held-out LFW people), or the "
             "point estimate (more genuine matches, the target held only on average)")] = True,
    dry_run: Annotated[bool, typer.Option(help="Measure and print; store nothing")] = False,
    layout: Layout = "auto",
    whole_image_fallback: WholeImage = False,
    workers: Annotated[int | None, typer.Option()] = None,
    cache: Cache = None,
    draws: Draws = 200,
) -> None:
    """Derive each purpose's threshold from its target FMR on labelled faces, with bootstrap intervals, and store
    it for the current model (audited). Targets below 1/impostor pairs are stored flagged as extrapolated."""
    from facewarden.evaluation.calibration import calibrate as run_calibration
    from facewarden.evaluation.calibration import load_sets
    from facewarden.vision.batch import EngineOptions
    from facewarden.vision.engine import model_info

    _check_dirs(dataset_dirs)
    if split_seed is not None and tune_half is not None:
        fail(InvalidInput("Give --split-seed or --tune-half, not both.", code="invalid_input"))
    s = Settings()
    service = open_service(s)
    with reported():
        targets = sorted(set(service.calibration.targets()) | set(target or []), reverse=True)
        data = load_sets(dataset_dirs, opts=EngineOptions.from_settings(s), workers=workers or s.workers,
                         cache=cache, layout=layout, whole_image_fallback=whole_image_fallback)
        model = model_info()
        report = run_calibration(data, targets, model_id=model.model_id, model_version=model.version,
                                 split_seed=split_seed, tune_half=tune_half, draws=draws, conservative=conservative)
        if json_out is not None:
            json_out.write_text(json.dumps(report, indent=2))
        stored = None if dry_run else service.calibration.record(LOCAL_ADMIN, report)
    shown = {k: v for k, v in report.items() if k != "tuning_identities"}
    print_json({**shown, "stored": stored["run_id"] if stored else None})


def calibrations() -> None:
    """The calibration each target FMR in use is decided at now, for the current face model: threshold, interval,
    and the labelled set it came from."""
    service = open_service(Settings())
    with reported():
        latest = service.calibration.latest(LOCAL_ADMIN)
    print_json({"calibrations": latest})
