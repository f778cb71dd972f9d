"""Which face of a photo to use when it shows several: the main one, or none.

A probe (a verification selfie, a document photo, a frame from a kiosk) often catches someone in the background,
and a press or family photo sent for enrolment often shows someone beside the person. A face is "the main one"
when one of two physical facts singles it out; otherwise the photo is ambiguous and refused:

* **Nearest the camera.** Its box is clearly the largest. "Clearly": dlib's HOG detector scans an image pyramid
  whose levels are 5/6 apart in side, so its boxes come in area steps of (6/5)^2 = 1.44; two faces at the same
  distance from the camera routinely land one step apart (on LFW, 1.34-1.44 between people side by side). A
  margin of 2 (>= 1.44^2, the side at least 1.41x the next) asks for two steps: a background face, not jitter.
* **Framed.** The photo was framed on it: the image centre lies in the middle half of its box (at most a quarter
  of its width and height from its centre), no other face is so framed, and it is not smaller than the largest
  by more than detector jitter (1.5x in area). Two people side by side put the centre between them.

Measured (bench/bench_accuracy.py, and the group photos in faces/*/misc): the 65 LFW photos with a second face
all get their subject's face (43 by size, 22 by framing; checked against the person's single-face photos); of
55 group photos, 4 get a main face by size and 1 by framing, the rest are refused. On
people/test/obama_and_biden.jpg the two largest faces differ by 1.02x and the centre falls between them: refused.

Pure (no model library): the engine passes boxes in, the service passes the purpose's setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from facewarden.governance import policy
from facewarden.vision.embedder import DetectedFace, FaceQualityError

if TYPE_CHECKING:
    import numpy as np

    from facewarden.vision.embedder import Embedder

Box = tuple[int, int, int, int]  # left, top, right, bottom (inclusive, like dlib)
DOMINANT_MARGIN = 2.0  # box area of the largest face over the next; see the module docstring
FRAMED_SIZE_TOLERANCE = 1.5  # a framed face may be this much smaller (area) than the largest: one pyramid step
ALL_PURPOSES = "*"  # in `dominant_face_purposes`: every purpose but law enforcement, which must be named


def _area(box: Box) -> int:
    left, top, right, bottom = box
    return max(0, right - left + 1) * max(0, bottom - top + 1)


def _framed(box: Box, width: int, height: int) -> bool:
    left, top, right, bottom = box
    cx, cy, bw, bh = (left + right) / 2, (top + bottom) / 2, right - left + 1, bottom - top + 1
    return abs(cx - width / 2) <= bw / 4 and abs(cy - height / 2) <= bh / 4


def main_face_index(boxes: Sequence[Box], width: int, height: int, margin: float = DOMINANT_MARGIN) -> int:
    """The index of the face to use: the only one, the largest when its area is at least `margin` times every
    other's, or the one face the photo is framed on. Otherwise `multiple_faces`, with how to fix the photo."""
    if not boxes:
        raise FaceQualityError("No face was found in the photo.", code="no_face")
    areas = [_area(b) for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: areas[i], reverse=True)
    if len(order) == 1:
        return order[0]
    first, second = areas[order[0]], areas[order[1]]
    if second <= 0 or first >= margin * second:
        return order[0]
    framed = [i for i, b in enumerate(boxes) if _framed(b, width, height)]
    if len(framed) == 1 and areas[framed[0]] * FRAMED_SIZE_TOLERANCE >= first:
        return framed[0]
    raise FaceQualityError(
        f"The photo shows {len(boxes)} faces and none is clearly the main one: the largest is only "
        f"{first / second:.2f}x the area of the next ({margin:g}x is needed to pick it) and no single face is at "
        "the centre of the photo. A wrong pick would let the other person match as this one, so none is taken. "
        "Retake the photo with only the person in front of the camera, or crop it to their face, and send it "
        "again.", code="multiple_faces")


def allows_dominant(purpose: str | None, purposes: Sequence[str]) -> bool:
    """Whether a probe for `purpose` may use its main face (`Settings.dominant_face_purposes`)."""
    if not purpose:
        return False
    if purpose in purposes:
        return True
    return ALL_PURPOSES in purposes and purpose != policy.LAW_ENFORCEMENT


def probe_face(embedder: Embedder, rgb: np.ndarray, *, dominant: bool,
               margin: float = DOMINANT_MARGIN) -> DetectedFace:
    """The one face of a photo: its main face where allowed and the embedder can pick it, else exactly one."""
    pick = getattr(embedder, "main_face", None)
    if dominant and pick is not None:
        face: DetectedFace = pick(rgb, margin)
        return face
    return embedder.single_face(rgb)
