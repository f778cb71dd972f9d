"""Per-frame measures that the challenge and the other checks consume: face, landmarks, pose, eye openness."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from facewarden.imaging.video import Frame
from facewarden.liveness.blink import eye_openness
from facewarden.liveness.landmarks import FaceLandmarks, LandmarkDetector
from facewarden.liveness.pose import head_pose


@dataclass(frozen=True)
class FrameMeasures:
    t: float
    landmarks: FaceLandmarks | None  # None: no face found in this frame
    yaw: float = math.nan
    pitch: float = math.nan
    roll: float = math.nan
    openness: float = math.nan

    @property
    def face(self) -> bool:
        return self.landmarks is not None


def measure_frame(frame: Frame, detector: LandmarkDetector) -> FrameMeasures:
    lm = detector.locate(frame.rgb)
    if lm is None:
        return FrameMeasures(t=frame.t, landmarks=None)
    pose = head_pose(lm)
    return FrameMeasures(t=frame.t, landmarks=lm, yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll,
                         openness=eye_openness(frame.rgb, lm))


def measure_frames(frames: Sequence[Frame], detector: LandmarkDetector) -> list[FrameMeasures]:
    return [measure_frame(f, detector) for f in frames]
