"""The animated photo: one still photo of the victim driven through the asked actions by 2D warps.

This is the cheap attack the field found (one social-media photo, a hundred lines of OpenCV, sent as a video):

* ``driven``: the attacker performs the challenge in front of their own camera; their 68 landmarks, frame by
  frame, move the victim's landmarks (displacements relative to the attacker's first frame, aligned by a
  similarity transform), and a piecewise-affine warp over a Delaunay triangulation of the landmarks and the
  image border moves the photo's pixels with them. Eyes close with the attacker's: the eyelid landmarks meet,
  the warp squeezes the eye, and the closed eye is painted over with the skin above it.
* ``cylinder``: no driver at all; the face is treated as a cylinder and its landmarks rotated on it (yaw and
  pitch timed like `attack_motion.motion_plan`), the same piecewise-affine warp following them; blinks are
  painted.

Both make frames that are remappings of one photo: no pixel of a turned frame shows anything the photo did
not, which is what `liveness.texture` checks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["EYE_68", "align_similarity", "cylinder_points", "paint_closed_eyes", "piecewise_affine", "relight",
           "transfer_motion"]

EYE_68 = (tuple(range(36, 42)), tuple(range(42, 48)))  # the two eyes' six points each, 68-point scheme


def _border_points(h: int, w: int) -> np.ndarray:
    xs, ys = (0, w / 2, w - 1), (0, h / 2, h - 1)
    return np.array([(x, y) for x in xs for y in ys if (x, y) != (w / 2, h / 2)], np.float64)


def piecewise_affine(img: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`img` warped so that its points `src` land on `dst` (both (n, 2)), each triangle of a Delaunay
    triangulation of `dst` (plus the fixed image border) mapped by its own affine transform."""
    h, w = img.shape[:2]
    border = _border_points(h, w)
    s = np.vstack([src, border])
    d = np.vstack([dst, border])
    subdiv = cv2.Subdiv2D((-1, -1, w + 2, h + 2))
    for p in d:
        subdiv.insert((float(min(max(p[0], 0), w - 1)), float(min(max(p[1], 0), h - 1))))
    index = {}
    for k, p in enumerate(d):
        index[(round(float(min(max(p[0], 0), w - 1)), 2), round(float(min(max(p[1], 0), h - 1)), 2))] = k
    label = np.full((h, w), -1, np.int32)
    maps = []
    for tri in subdiv.getTriangleList():
        pts = tri.reshape(3, 2)
        ids = [index.get((round(float(x), 2), round(float(y), 2))) for x, y in pts]
        if any(i is None for i in ids):
            continue
        back = cv2.getAffineTransform(d[ids].astype(np.float32), s[ids].astype(np.float32))
        cv2.fillConvexPoly(label, np.round(d[ids]).astype(np.int32), len(maps))
        maps.append(back)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xs.copy(), ys.copy()
    for k, m in enumerate(maps):
        sel = label == k
        map_x[sel] = m[0, 0] * xs[sel] + m[0, 1] * ys[sel] + m[0, 2]
        map_y[sel] = m[1, 0] * xs[sel] + m[1, 1] * ys[sel] + m[1, 2]
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift) taking points `src` closest to `dst`."""
    m, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32))
    if m is None:
        raise ValueError("the landmark sets cannot be aligned (degenerate points)")
    return m


def transfer_motion(photo_points: np.ndarray, driver: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The photo's landmarks moved like the driver's: each driver frame's displacement from its first frame,
    brought into the photo's frame by the similarity that aligns the driver's first frame with the photo."""
    m = align_similarity(driver[0], photo_points)
    lin = m[:, :2]
    return [photo_points + (d - driver[0]) @ lin.T for d in driver]


def _face_radii(points: np.ndarray) -> tuple[float, float]:
    """Half width and half height of the head the landmarks lie on (a little beyond their extent)."""
    return (max(1.0, (points[:, 0].max() - points[:, 0].min()) / 2 * 1.15),
            max(1.0, (points[:, 1].max() - points[:, 1].min()) / 2 * 1.3))


def cylinder_points(points: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Landmarks of a frontal face rotated on a cylinder (yaw) and a horizontal cylinder (pitch) whose radius
    is the face's half width: the cheap 'per-half' turn, near half compressed less than the far one."""
    cx, cy = points.mean(axis=0)
    half_w, half_h = _face_radii(points)
    out = points.astype(np.float64).copy()
    ax = np.arcsin(np.clip((points[:, 0] - cx) / half_w, -0.99, 0.99)) + math.radians(yaw_deg)
    out[:, 0] = cx + half_w * np.sin(np.clip(ax, -math.pi / 2, math.pi / 2))
    ay = np.arcsin(np.clip((points[:, 1] - cy) / half_h, -0.99, 0.99)) - math.radians(pitch_deg)
    out[:, 1] = cy + half_h * np.sin(np.clip(ay, -math.pi / 2, math.pi / 2))
    return out


def paint_closed_eyes(img: np.ndarray, points: np.ndarray, closed: float) -> np.ndarray:
    """Eyes painted shut by `closed` (0 open .. 1 shut): each eye's hull is blended with the skin just above
    it (the upper lid), feathered, the way a photo editor closes eyes."""
    if closed <= 0.0:
        return img
    out = img.astype(np.float32)
    h, w = img.shape[:2]
    for eye in EYE_68:
        pts = points[list(eye)]
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        ew = max(4.0, x1 - x0)
        lid_y0 = int(max(0, y0 - 0.45 * ew))
        lid = img[lid_y0:max(lid_y0 + 1, int(y0 - 0.1 * ew)), int(max(0, x0)):int(min(w, x1 + 1))]
        if lid.size == 0:
            continue
        colour = lid.reshape(-1, 3).mean(axis=0)
        mask = np.zeros((h, w), np.float32)
        hull = cv2.convexHull(np.round(pts).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1.0)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=max(1, round(ew / 12)))
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, ew / 10)) * closed
        lash_y = int(np.rint((y0 + y1) / 2 + 0.1 * (y1 - y0)))
        out = out * (1 - mask[..., None]) + colour[None, None, :] * mask[..., None]
        if closed > 0.6 and 0 <= lash_y < h:  # the line of the closed lashes
            cv2.line(out, (int(x0), lash_y), (int(x1), lash_y), (colour * 0.45).tolist(), max(1, round(ew / 14)))
    return np.clip(out, 0, 255).astype(np.uint8)


def relight(img: np.ndarray, points: np.ndarray, yaw_deg: float, pitch_deg: float, strength: float = 0.9
            ) -> np.ndarray:
    """The next attacker's step: shading that follows the fake turn (the side turning away from a frontal light
    darkens, the side turning towards it brightens; likewise for pitch), applied inside the face, feathered: a
    Lambertian cylinder lit from the camera, so the warped photo's texture changes as a turning head's would."""
    h, w = img.shape[:2]
    cx, cy = points.mean(axis=0)
    half_w, half_h = _face_radii(points)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = np.clip((xs - cx) / half_w, -1, 1)
    v = np.clip((ys - cy) / half_h, -1, 1)
    # a pixel now at angle a on the cylinder was at a - yaw (cylinder_points), lit cos(a - yaw); now cos(a)
    now_x, now_y = np.arcsin(u * 0.99), np.arcsin(v * 0.99)
    before = np.cos(now_x - math.radians(yaw_deg)) * np.cos(now_y + math.radians(pitch_deg))
    gain = np.cos(now_x) * np.cos(now_y) / np.maximum(0.2, before)
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), max(2.0, half_w / 6))
    factor = 1.0 + strength * (np.clip(gain, 0.3, 1.5) - 1.0) * mask
    return np.clip(img.astype(np.float32) * factor[..., None], 0, 255).astype(np.uint8)
