"""Which face of a probe photo to use when it shows several: the dominant one, or none.

A probe (a verification selfie, a document photo, a frame from a kiosk) often catches someone in the background.
The face nearest the camera is the one meant when its box is clearly the largest. "Clearly": dlib's HOG detector
scans an image pyramid whose levels are 5/6 apart in side, so its boxes come in area steps of (6/5)^2 = 1.44; two
faces at the same distance from the camera routinely land one step apart (on LFW, 1.34-1.44 between people side
by side). A margin of 2 (>= 1.44^2, the side at least 1.41x the next) asks for two steps: a background face, not
detector jitter. On people/test/obama_and_biden.jpg the two largest faces differ by 1.02x: refused as ambiguous.

Pure (no model library): the engine passes box areas in, the service passes the purpose's setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from facewarden.governance import policy
from facewarden.vision.embedder import DetectedFace, FaceQualityError

if TYPE_CHECKING:
    import numpy as np

    from facewarden.vision.embedder import Embedder

DOMINANT_MARGIN = 2.0  # box area of the largest face over the next; see the module docstring
ALL_PURPOSES = "*"  # in `dominant_face_purposes`: every purpose but law enforcement, which must be named


def dominant_index(areas: Sequence[float], margin: float = DOMINANT_MARGIN) -> int:
    """The index of the face to use: the only one, or the largest when its area is at least `margin` times every
    other's. Otherwise `multiple_faces`, with how to fix the photo."""
    if not areas:
        raise FaceQualityError("No face was found in the photo.", code="no_face")
    order = sorted(range(len(areas)), key=lambda i: areas[i], reverse=True)
    if len(order) == 1:
        return order[0]
    first, second = areas[order[0]], areas[order[1]]
    if second <= 0 or first >= margin * second:
        return order[0]
    raise FaceQualityError(
        f"The photo shows {len(areas)} faces and none is clearly the main one (the largest is {first / second:.2f}x "
        f"the area of the next; {margin:g}x is needed to pick it). Retake the photo with only the person in front "
        "of the camera, or crop it to their face, and send it again.", code="multiple_faces")


def allows_dominant(purpose: str | None, purposes: Sequence[str]) -> bool:
    """Whether a probe for `purpose` may use its dominant face (`Settings.dominant_face_purposes`)."""
    if not purpose:
        return False
    if purpose in purposes:
        return True
    return ALL_PURPOSES in purposes and purpose != policy.LAW_ENFORCEMENT


def probe_face(embedder: Embedder, rgb: np.ndarray, *, dominant: bool,
               margin: float = DOMINANT_MARGIN) -> DetectedFace:
    """The one face of a probe: the dominant face where allowed and the embedder can pick it, else exactly one."""
    pick = getattr(embedder, "dominant_face", None)
    if dominant and pick is not None:
        face: DetectedFace = pick(rgb, margin)
        return face
    return embedder.single_face(rgb)
