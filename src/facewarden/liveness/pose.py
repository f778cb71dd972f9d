"""Head yaw and pitch from the eye corners and the nose base (works with the 5- and the 68-point layout).

A geometric estimate rather than cv2.solvePnP: five points, four of them nearly collinear, leave PnP poorly
constrained (even the 6-point 68-landmark PnP used to validate this jumps between solutions on real video),
while the nose base's offset from the eye line, measured in units of the outer-eye-corner distance, gives yaw
and pitch in closed form under a weak-perspective camera:

* the nose base sits NOSE_DEPTH eye-widths in front of the outer eye corners, so turning the head by yaw
  shifts it sideways by NOSE_DEPTH*sin(yaw) while the eye line shrinks by cos(yaw): ratio = NOSE_DEPTH*tan(yaw);
* pitch moves it along the eye line's normal by about -PITCH_GAIN*sin(pitch) from its neutral NOSE_DROP;
  pitch = atan((NOSE_DROP - drop) / PITCH_GAIN) keeps that first-order relation without saturating.

NOSE_DEPTH = 0.2 was fitted to 68-point solvePnP poses on the project's real videos (slope 0.17) and to the
anthropometric depth of the subnasale (0.68 x the nose tip's ~0.3), so angles come out in honest degrees.
PITCH_GAIN = 0.3 is the slope of the drop against the 68-point solvePnP pitch on the same videos (0.15-0.48 per
radian, median ~0.3); it differs from NOSE_DEPTH, so pitch is the least certain angle: use it relative.
NOSE_DROP varies between people (0.5-0.65 seen), so absolute pitch carries a per-person offset: the challenge
uses pitch relative to the session's own baseline.

Sign conventions, for frames as the camera delivers them (not mirrored):
yaw > 0: the subject turned to their own left (nose toward the image's right);
pitch > 0: the subject looks up; roll > 0: the eye line rotates clockwise in the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facewarden.liveness.landmarks import FaceLandmarks

NOSE_DEPTH = 0.20
NOSE_DROP = 0.55
PITCH_GAIN = 0.30


@dataclass(frozen=True)
class HeadPose:
    yaw: float  # degrees
    pitch: float  # degrees
    roll: float  # degrees


def head_pose(lm: FaceLandmarks) -> HeadPose:
    (lo, _), (ro, _) = lm.left_eye, lm.right_eye
    axis = (ro - lo).astype(np.float64)
    width = float(np.hypot(*axis))
    if width < 1e-6:
        return HeadPose(0.0, 0.0, 0.0)
    u = axis / width
    v = np.array([-u[1], u[0]])  # the eye line's normal, pointing down the face
    offset = lm.nose.astype(np.float64) - (lo + ro) / 2.0
    side = float(offset @ u) / width
    drop = float(offset @ v) / width
    yaw = math.atan2(side, NOSE_DEPTH)
    # The eye line is foreshortened by cos(yaw); the drop is not, so undo that before solving for pitch.
    drop *= math.cos(yaw)
    pitch = math.atan2(NOSE_DROP - drop, PITCH_GAIN)
    roll = math.atan2(u[1], u[0])
    return HeadPose(math.degrees(yaw), math.degrees(pitch), math.degrees(roll))
