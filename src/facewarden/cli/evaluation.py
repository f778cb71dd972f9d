"""Accuracy evaluation (`eval`): offline, on a labelled folder; it needs no service, database or keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facewarden.cli.common import fail, print_json, reported
from facewarden.config import Settings
from facewarden.errors import InvalidInput

eval_app = typer.Typer(help="Accuracy evaluation on a labelled folder of faces.", no_args_is_help=True)


@eval_app.command("pairs")
def eval_pairs(
    dataset_dir: Path,
    json_out: Annotated[Path, typer.Option("--json", help="Write the metrics here")],
    det: Annotated[Path | None, typer.Option(help="DET curve PNG (default: next to the JSON)")] = None,
    layout: Annotated[str, typer.Option(help="folders | prefix | auto")] = "auto",
    whole_image_fallback: Annotated[bool, typer.Option(help="Use the whole image when no face is detected "
                                                            "(tightly cropped sets such as ORL)")] = False,
    workers: Annotated[int | None, typer.Option()] = None,
) -> None:
    """All genuine/impostor pairs: EER, FNMR at FMR 1e-2/1e-3, rates at the threshold, rank-1, DET curve."""
    from facewarden.evaluation import evaluate_dataset
    from facewarden.vision.batch import EngineOptions

    if not dataset_dir.is_dir():
        fail(InvalidInput(f"{dataset_dir}: no such folder", code="file_unreadable"))
    s = Settings()
    opts = EngineOptions.from_settings(s)
    det_png = det or json_out.with_suffix(".png")
    with reported():
        result = evaluate_dataset(dataset_dir, threshold=s.match_threshold, opts=opts, workers=workers or s.workers,
                                  layout=layout, whole_image_fallback=whole_image_fallback, det_png=det_png)
        json_out.write_text(json.dumps(result, indent=2))
    print_json(result)
