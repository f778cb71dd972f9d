"""The moving photo: a flat picture held in front of the camera, tilted in time with a challenge by an
adaptive attacker who searches the tilt that fools the landmark detector most, with hand tremor."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facewarden.evaluation.attack_segments import FPS
from facewarden.liveness.challenge import Action, Challenge
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.liveness.pose import head_pose

__all__ = ["Pose", "action_tilts", "motion_plan", "photo_homography", "render_photo"]


@dataclass(frozen=True)
class Pose:
    """How the held photo is oriented: tilt angles (degrees) and its position (pixels), scale."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0


def photo_homography(src_hw: tuple[int, int], out_hw: tuple[int, int], pose: Pose, fill: float) -> np.ndarray:
    """Homography from the photo's pixels to the camera image: the photo is a plane at distance F (focal length
    1.2 x image width) filling `fill` of the image width, rotated by the pose and moved."""
    sh, sw = src_hw
    oh, ow = out_hw
    f = 1.2 * ow
    s = fill * ow / sw * pose.scale
    corners = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float64)
    pts = np.column_stack([(corners[:, 0] - sw / 2) * s, (corners[:, 1] - sh / 2) * s, np.zeros(4)])
    a, b, c = (math.radians(x) for x in (pose.yaw, pose.pitch, pose.roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    cam = pts @ (rz @ rx @ ry).T + np.array([pose.tx, pose.ty, f])
    k = np.array([[f, 0, ow / 2], [0, f, oh / 2], [0, 0, 1.0]])
    proj = cam @ k.T
    proj = proj[:, :2] / proj[:, 2:]
    return cv2.getPerspectiveTransform(corners.astype(np.float32), proj.astype(np.float32))


def render_photo(photo: np.ndarray, background: np.ndarray, pose: Pose, fill: float) -> np.ndarray:
    hom = photo_homography(photo.shape[:2], background.shape[:2], pose, fill)
    out = background.copy()
    cv2.warpPerspective(photo, hom, (background.shape[1], background.shape[0]), dst=out,
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    return out


_TILTS = tuple((a, b) for a in range(-45, 46, 15) for b in range(-45, 46, 15))


def action_tilts(photo: np.ndarray, detector: LandmarkDetector, fill: float, background: np.ndarray
                 ) -> dict[Action, Pose]:
    """The adaptive attacker's search: for each head action, the tilt of the photo whose landmarks look most
    like that action (apparent yaw/pitch change, read by the same detector the checker uses)."""

    def pose_of(p: Pose) -> tuple[float, float] | None:
        lm = detector.locate(render_photo(photo, background, p, fill))
        if lm is None:
            return None
        hp = head_pose(lm)
        return hp.yaw, hp.pitch

    base = pose_of(Pose())
    if base is None:
        raise ValueError("no face in the photo")
    seen = []
    for a, b in _TILTS:
        got = pose_of(Pose(yaw=a, pitch=b))
        if got is not None:
            seen.append((Pose(yaw=a, pitch=b), got[0] - base[0], got[1] - base[1]))
    best: dict[Action, Pose] = {}
    calm = [s for s in seen if s[2] < 8.0]  # a turn that does not also read as looking up
    if calm:
        best[Action.TURN_LEFT] = max(calm, key=lambda s: s[1])[0]
        best[Action.TURN_RIGHT] = min(calm, key=lambda s: s[1])[0]
    level = [s for s in seen if abs(s[1]) < 8.0]
    if level:
        best[Action.LOOK_UP] = max(level, key=lambda s: s[2])[0]
    return best


def _tremor(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """Hand tremor: a few slow random sinusoids per degree of freedom (roll, tx, ty, scale), shape (n, 4)."""
    t = np.arange(n) / fps
    out = np.zeros((n, 4))
    amp = (1.5, 6.0, 5.0, 0.02)
    for d in range(4):
        for _ in range(3):
            f, ph = rng.uniform(0.3, 2.0), rng.uniform(0, 2 * math.pi)
            out[:, d] += amp[d] / 3 * np.sin(2 * math.pi * f * t + ph)
    return out


def motion_plan(challenge: Challenge, tilts: dict[Action, Pose], rng: np.random.Generator,
                fps: float = FPS) -> list[tuple[float, Pose]]:
    """Poses over time, timed like a person answering the challenge: 1 s facing the camera, then each head
    action as a 0.3 s tilt, held 0.35 s, 0.3 s back, one per second; a blink cannot be faked (held still)."""
    onsets = [1.0 + 1.0 * k + float(rng.uniform(-0.1, 0.1)) for k in range(len(challenge.actions))]
    end = onsets[-1] + 1.3 if onsets else 3.0
    n = int(end * fps) + 1
    tremor = _tremor(rng, n, fps)
    plan = []
    for i in range(n):
        t = i / fps
        yaw = pitch = 0.0
        for action, t_on in zip(challenge.actions, onsets, strict=True):
            target = tilts.get(action)
            if target is None:
                continue
            x = t - t_on
            w = 0.0 if x < 0 or x > 0.95 else min(1.0, x / 0.3, (0.95 - x) / 0.3)
            yaw += w * target.yaw
            pitch += w * target.pitch
        r, tx, ty, sc = tremor[i]
        plan.append((t, Pose(yaw=yaw, pitch=pitch, roll=r, tx=tx, ty=ty, scale=1.0 + sc)))
    return plan

