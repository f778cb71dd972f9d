"""Operating points: the distance threshold each purpose matches at, from evidence.

A purpose states the false match rate it accepts (`target_fmr`); `facewarden calibrate` measures, on a labelled
set of faces, the distance threshold that holds each target for the current face model, and stores it here.
`threshold_for` is the one place that answers "which threshold for this purpose": the latest calibration for the
current model version and the purpose's target, else the configured `match_threshold`; the answer says which.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from facewarden.errors import InvalidInput
from facewarden.governance import policy, roles
from facewarden.governance.actors import DEFAULT_TENANT, Actor
from facewarden.service.common import iso
from facewarden.service.context import ServiceContext
from facewarden.store import Calibration, Purpose, repositories

CALIBRATED = "calibration"
EXTRAPOLATED = "calibration_extrapolated"  # the target is below what the calibration set could resolve
CONFIGURED = "configured"  # no calibration for this model and target: settings.match_threshold


@dataclass(frozen=True)
class Threshold:
    value: float
    source: str  # CALIBRATED, EXTRAPOLATED or CONFIGURED
    target_fmr: float | None
    calibration_id: str | None = None


def _latest(s: Session, model_version: str, target: float) -> Calibration | None:
    lo, hi = target * (1 - 1e-9), target * (1 + 1e-9)  # floats round-trip, but never compare them exactly
    return s.scalars(select(Calibration).where(Calibration.model_version == model_version,
                                               Calibration.target_fmr.between(lo, hi))
                     .order_by(Calibration.created_at.desc(), Calibration.id).limit(1)).first()


def threshold_at(ctx: ServiceContext, s: Session, target_fmr: float | None) -> Threshold:
    """The threshold for a target FMR: the latest calibration of the current model, else the configured one."""
    if target_fmr is not None:
        row = _latest(s, ctx.embedder.model.version, target_fmr)
        if row is not None:
            return Threshold(row.threshold, EXTRAPOLATED if row.extrapolated else CALIBRATED, target_fmr, row.id)
    return Threshold(ctx.settings.match_threshold, CONFIGURED, target_fmr)


def threshold_for(ctx: ServiceContext, s: Session, tenant_id: str, purpose: str) -> Threshold:
    """The threshold a comparison for `purpose` in `tenant_id` is decided at (verify, identify, add photos,
    the liveness identity check). Police searches use `law_enforcement_threshold`."""
    row = s.get(Purpose, (tenant_id, purpose))
    return threshold_at(ctx, s, row.target_fmr if row is not None else None)


def law_enforcement_threshold(ctx: ServiceContext, s: Session) -> Threshold:
    """Police searches return leads among many comparisons: they hold the strictest target."""
    return threshold_at(ctx, s, policy.LAW_ENFORCEMENT_TARGET_FMR)


def calibration_json(row: Calibration) -> dict[str, Any]:
    ci = [row.threshold_ci_low, row.threshold_ci_high] if row.threshold_ci_low is not None else None
    fnmr_ci = [row.fnmr_ci_low, row.fnmr_ci_high] if row.fnmr_ci_low is not None else None
    return {"id": row.id, "run_id": row.run_id, "model": f"{row.model_id}@{row.model_version}",
            "target_fmr": row.target_fmr, "threshold": row.threshold, "threshold_ci": ci,
            "extrapolated": row.extrapolated, "fmr": row.fmr, "fnmr": row.fnmr, "fnmr_ci": fnmr_ci,
            "end_to_end_fnmr": row.end_to_end_fnmr, "dataset": row.dataset, "dataset_digest": row.dataset_digest,
            "identities": row.identities, "images": row.images, "failed_to_enrol": row.failed_to_enrol,
            "genuine_pairs": row.genuine_pairs, "impostor_pairs": row.impostor_pairs,
            "bootstrap_draws": row.bootstrap_draws, "created_at": iso(row.created_at), "created_by": row.created_by}


class Calibrations:
    """Recording calibrations (deployment administrators) and reading the threshold of a purpose."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def targets(self) -> list[float]:
        """Every distinct target FMR in use: each tenant's purposes and the police searches."""
        with self.ctx.db.session(readonly=True) as s:
            found = {p.target_fmr for p in repositories.all_purposes(s).values()}
        return sorted(found | {policy.LAW_ENFORCEMENT_TARGET_FMR}, reverse=True)

    def threshold(self, actor: Actor, purpose: str) -> Threshold:
        with self.ctx.db.session(readonly=True) as s:
            return threshold_for(self.ctx, s, actor.tenant_id, purpose)

    def latest(self, actor: Actor) -> list[dict[str, Any]]:
        """The calibration each target FMR in use is decided at now (current model), newest first."""
        self.ctx.require(actor, "calibration_list", roles.ADMIN, roles.AUDITOR)
        version = self.ctx.embedder.model.version
        with self.ctx.db.session(readonly=True) as s:
            rows = [calibration_json(r) for t in self.targets() if (r := _latest(s, version, t)) is not None]
        if actor.tenant_id != DEFAULT_TENANT:  # the deployment's own people and paths are not other tenants' business
            for row in rows:
                row["created_by"] = row["dataset"] = None
        return rows

    def record(self, actor: Actor, report: dict[str, Any]) -> dict[str, Any]:
        """Store one calibration run (the report of `evaluation.calibration.calibrate`), audited. Only the
        deployment's administrators: the thresholds hold for every tenant."""
        with self.ctx.audited(actor, "calibrate", roles.ADMIN) as event:
            self.ctx.require_deployment_admin(actor, "calibrate")
            points = report.get("operating_points") or []
            if not points:
                raise InvalidInput("The calibration has no operating point to store.", code="bad_dataset")
            run_id, now = str(uuid.uuid4()), self.ctx.clock()
            data = report["calibration_set"]
            with self.ctx.db.session() as s:
                rows = []
                for p in points:
                    ci, fnmr_ci = p.get("threshold_ci") or [None, None], p.get("fnmr_ci") or [None, None]
                    rows.append(Calibration(
                        id=str(uuid.uuid4()), run_id=run_id, model_id=report["model_id"],
                        model_version=report["model_version"], target_fmr=p["target_fmr"], threshold=p["threshold"],
                        threshold_ci_low=ci[0], threshold_ci_high=ci[1], extrapolated=p["extrapolated"], fmr=p["fmr"],
                        fnmr=p["fnmr"], fnmr_ci_low=fnmr_ci[0], fnmr_ci_high=fnmr_ci[1],
                        end_to_end_fnmr=p["end_to_end_fnmr"], dataset=str(data["name"])[:200],
                        dataset_digest=data["digest"], identities=data["identities"], images=data["images"],
                        failed_to_enrol=data["failed_to_enrol"], genuine_pairs=data["genuine_pairs"],
                        impostor_pairs=data["impostor_pairs"], bootstrap_draws=report["bootstrap_draws"],
                        created_at=now, created_by=actor.principal))
                s.add_all(rows)
                s.flush()
                event.outcome = "recorded"
                event.details = {"run_id": run_id, "model": report["model_version"],
                                 "rule": str(report.get("rule", "point estimate")),
                                 "targets": [f"{p['target_fmr']:g}" for p in points],  # floats never enter
                                 "extrapolated": [f"{p['target_fmr']:g}" for p in points if p["extrapolated"]],
                                 "dataset_digest": data["digest"], "identities": data["identities"],
                                 "images": data["images"]}
                self.ctx.audit.append(s, event)
                return {"run_id": run_id, "calibrations": [calibration_json(r) for r in rows]}
