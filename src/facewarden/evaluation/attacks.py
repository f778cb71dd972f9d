"""Presentation-attack set in the spirit of ISO/IEC 30107-3, built from the project's real face data.

Genuine sessions are 3-second segments cut from the real videos (`video/d*.mp4`), each with the actions its
person really performs there, so a `Challenge` can be made that the segment answers. Attacks are built from
the same people (the claimed identity is always the person shown, enrolled from another moment of their video,
so identity checks never catch an attack by accident):

* ``still_photo``: one genuine frame held still (sensor noise, JPEG), answering a random challenge.
* ``photo_moved_3d``: one genuine frame as a flat photo, tilted and moved in 3D in time with the challenge.
  The attacker is adaptive: for each requested turn or look-up the tilt that makes the photo's landmarks
  look most turned (searched with the same landmark detector) is used, so the photo can pass the challenge's
  head actions; it cannot blink.
* ``simulated_print`` / ``simulated_screen``: the same motion, the photo first degraded like a print
  (halftone, colour shift, blur, paper texture) or shown on a screen (bezel, gamma, colour cast, pixel grid
  that aliases into moiré, glare).
* ``real_print`` / ``real_replay``: the real printed photo and tablet replay of the spoof folder
  (`image_F1.jpg`, `image_F2.jpg`, EXIF orientation applied), animated the same way.
* ``replayed_recording``: a genuine segment re-captured (other sampling phase, crop, brightness, JPEG) and
  submitted again: under a new session with a different challenge, or answering the same actions while its
  original's fingerprint is on record as accepted.
* ``face_swap``: a session that starts with one person and switches to another mid-way.

The segments table was read off the videos at 15 fps: windows of 3 s (starting on a 0.4 s grid) where the
68-point landmark model (an independent reference: other landmarks, eye aspect ratio for blinks) and the
default 5-point pipeline see the same action sequence; 108 of the 202 windows where the reference saw
actions agreed, and non-overlapping-as-possible ones (starts >= 1.6 s apart) were kept. Where the two models
disagree the recorded motion is borderline (a turn near 15 degrees), which a challenged user would not make.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import dlib
import numpy as np
from PIL import Image

from facewarden.imaging import decode_image
from facewarden.imaging.video import Frame
from facewarden.liveness.challenge import Action, Challenge
from facewarden.liveness.landmarks import LandmarkDetector
from facewarden.liveness.measures import measure_frames
from facewarden.liveness.media import fingerprint
from facewarden.liveness.pose import head_pose
from facewarden.vision.engine import FaceEngine

__all__ = ["ATTACK_TYPES", "SEGMENTS", "AttackSet", "Presentation", "Segment"]

ATTACK_TYPES = ("still_photo", "photo_moved_3d", "simulated_print", "simulated_screen", "real_print",
                "real_replay", "replayed_recording", "face_swap")
VIDEOS = ("d0", "d3", "d6", "d10", "d11", "d12", "d14", "d18", "d19", "d20")
FPS = 15.0
SEGMENT_S = 3.0

L, R, U, B = Action.TURN_LEFT, Action.TURN_RIGHT, Action.LOOK_UP, Action.BLINK


@dataclass(frozen=True)
class Segment:
    video: str
    t0: float  # seconds from the video's first frame; the segment lasts SEGMENT_S
    actions: tuple[Action, ...]  # what the person does in it, in order

    @property
    def t1(self) -> float:
        return self.t0 + SEGMENT_S

    @property
    def label(self) -> str:
        return f"{self.video} {self.t0:.1f}-{self.t1:.1f} s"


SEGMENTS: tuple[Segment, ...] = (
    Segment("d0", 0.0, (B,)),
    Segment("d10", 4.8, (B,)), Segment("d10", 8.4, (B,)), Segment("d10", 10.0, (B,)),
    Segment("d11", 0.0, (U,)), Segment("d11", 1.6, (L,)), Segment("d11", 3.6, (L,)), Segment("d11", 5.2, (R,)),
    Segment("d12", 0.8, (B, R)),
    Segment("d14", 0.0, (B,)), Segment("d14", 1.6, (B,)), Segment("d14", 3.2, (B,)), Segment("d14", 4.8, (B,)),
    Segment("d14", 6.8, (B,)), Segment("d14", 8.4, (B,)), Segment("d14", 13.6, (B,)),
    Segment("d18", 3.6, (B,)),
    Segment("d19", 0.0, (R, U)), Segment("d19", 2.0, (U, B)), Segment("d19", 3.6, (L, U)),
    Segment("d19", 5.2, (R, U)),
    Segment("d3", 1.6, (R,)), Segment("d3", 4.0, (L, U, R)), Segment("d3", 6.4, (L,)), Segment("d3", 8.0, (R, U)),
    Segment("d6", 1.6, (R,)), Segment("d6", 4.0, (L, B)), Segment("d6", 6.4, (B, L)), Segment("d6", 8.4, (L, U)),
    Segment("d6", 10.0, (L,)), Segment("d6", 12.0, (R,)), Segment("d6", 14.0, (L, B)), Segment("d6", 15.6, (B, L)),
    Segment("d6", 17.2, (R,)), Segment("d6", 18.8, (R,)), Segment("d6", 20.4, (L,)), Segment("d6", 24.4, (L,)),
    Segment("d6", 26.4, (L,)), Segment("d6", 28.8, (R, U)),
)


@dataclass
class Presentation:
    """One session to decide: the frames, the challenge the presenter was given, the claimed identity."""

    kind: str  # "genuine" or one of ATTACK_TYPES
    label: str
    frames: list[Frame]
    challenge: Challenge
    enrolled: list[np.ndarray]
    earlier_fingerprints: list[np.ndarray] = field(default_factory=list)
    expected: tuple[str, ...] = ()  # reason codes that should refuse it (any of them); () for genuine
    mirrored: bool = False

    @property
    def attack(self) -> bool:
        return self.kind != "genuine"


# -- decoding -----------------------------------------------------------------------------------------------
def _decode_native(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every frame of a (trusted, local) video at its own rate: timestamps from 0 and RGB arrays."""
    times, images = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        t0 = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            t0 = frame.time if t0 is None else t0
            times.append(frame.time - t0)
            images.append(frame.to_ndarray(format="rgb24"))
    return np.array(times), images


def _sample(times: np.ndarray, images: list[np.ndarray], t0: float, t1: float, fps: float = FPS,
            phase: float = 0.0) -> list[Frame]:
    """Frames on a fps grid from t0 + phase to t1 (the first frame at or after each grid point, as the
    production decoder keeps them), timestamps re-based to the segment's first frame."""
    period = 1.0 / fps
    slack = 0.1 * period
    out: list[Frame] = []
    g = t0 + phase
    k = int(np.searchsorted(times, g - slack))
    while k < len(times) and times[k] <= t1 + slack:
        if times[k] >= g - slack:
            out.append(Frame(rgb=images[k], t=float(times[k])))
            while g <= times[k] + slack:
                g += period
        k += 1
    start = out[0].t if out else 0.0
    return [Frame(rgb=f.rgb, t=round(f.t - start, 6)) for f in out]


# -- image effects ------------------------------------------------------------------------------------------
def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _camera(rgb: np.ndarray, rng: np.random.Generator, noise: float = 1.5, quality: int = 88) -> np.ndarray:
    """What a camera adds to whatever it films: sensor noise and JPEG compression."""
    noisy = rgb.astype(np.float32) + rng.normal(0.0, noise, rgb.shape).astype(np.float32)
    return _jpeg(np.clip(noisy, 0, 255).astype(np.uint8), quality)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Zero-mean, unit-ish random field smoothed over `scale` pixels."""
    f = cv2.GaussianBlur(rng.normal(0.0, 1.0, shape).astype(np.float32), (0, 0), scale)
    return f / max(float(f.std()), 1e-6)


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A room behind the held photo or screen: a smooth, dim colour gradient with texture."""
    base = rng.uniform(60, 150, 3).astype(np.float32)
    light = _smooth_field((h, w), rng, 60.0)[..., None] * 18.0
    texture = _smooth_field((h, w), rng, 2.0)[..., None] * 4.0
    return np.clip(base + light + texture, 0, 255).astype(np.uint8)


def degrade_print(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A consumer inkjet/laser print of the image: duller, warmer colours on paper, halftone dots, slight blur,
    paper texture."""
    img = rgb.astype(np.float32) / 255.0
    grey = img.mean(axis=2, keepdims=True)
    img = grey + 0.75 * (img - grey)  # prints lose saturation
    img = 0.08 + 0.84 * img  # and contrast: ink never reaches black, paper is not white
    img *= np.array([1.0, 0.97, 0.90], np.float32)  # warm paper white, weak blue ink
    h, w = img.shape[:2]
    # halftone: each channel thresholded against a rotated dot screen, mixed with the continuous tone (the
    # camera does not resolve the dots fully)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for c, angle in enumerate((15.0, 75.0, 0.0)):
        a = math.radians(angle)
        u, v = xx * math.cos(a) + yy * math.sin(a), -xx * math.sin(a) + yy * math.cos(a)
        screen = 0.5 + 0.25 * (np.cos(2 * math.pi * u / 4.0) + np.cos(2 * math.pi * v / 4.0))
        dots = (img[..., c] > screen).astype(np.float32)
        img[..., c] = 0.6 * img[..., c] + 0.4 * dots
    img = cv2.GaussianBlur(img, (0, 0), 1.1)
    paper = 1.0 + 0.035 * _smooth_field((h, w), rng, 3.0) + 0.02 * _smooth_field((h, w), rng, 25.0)
    img *= paper[..., None]
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)


def screen_content(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image shown on a phone/tablet screen: gamma and a blue cast, a visible RGB pixel grid (which the
    camera's resampling aliases into moiré), inside a black bezel."""
    img = (rgb.astype(np.float32) / 255.0) ** 0.8  # screens shown to a camera look brighter, flatter
    img *= np.array([0.92, 0.98, 1.08], np.float32)
    h, w = img.shape[:2]
    # subpixel stripes at 3 px per pixel triad, plus the dark gaps between pixel rows
    cols = np.arange(w) % 3
    stripe = np.stack([np.where(cols == c, 1.06, 0.97) for c in range(3)], axis=-1).astype(np.float32)
    rows = np.where(np.arange(h) % 3 == 2, 0.9, 1.0).astype(np.float32)[:, None, None]
    img = img * stripe[None, :, :] * rows
    pad_x, pad_y = int(0.07 * w), int(0.07 * h)
    framed = np.zeros((h + 2 * pad_y, w + 2 * pad_x, 3), np.float32) + 0.04  # bezel
    framed[pad_y:pad_y + h, pad_x:pad_x + w] = img
    framed = cv2.resize(framed, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(framed * 255.0, 0, 255).astype(np.uint8)


def _glare(rgb: np.ndarray, rng: np.random.Generator, at: tuple[float, float]) -> np.ndarray:
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = at[0] * w, at[1] * h
    spot = np.exp(-(((xx - cx) / (0.18 * w)) ** 2 + ((yy - cy) / (0.12 * h)) ** 2))
    return np.clip(rgb.astype(np.float32) + 70.0 * spot[..., None], 0, 255).astype(np.uint8)


def _moire(rgb: np.ndarray, phase: float) -> np.ndarray:
    """Low-frequency interference bands, as a camera filming a pixel grid records them."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    band = 1.0 + 0.05 * np.sin(2 * math.pi * (0.8 * xx + 0.6 * yy) / 23.0 + phase) \
        * np.sin(2 * math.pi * (-0.5 * xx + 0.86 * yy) / 31.0 + 0.7 * phase)
    return np.clip(rgb.astype(np.float32) * band[..., None], 0, 255).astype(np.uint8)


# -- the moving photo -----------------------------------------------------------------------------------------
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
        best[L] = max(calm, key=lambda s: s[1])[0]
        best[R] = min(calm, key=lambda s: s[1])[0]
    level = [s for s in seen if abs(s[1]) < 8.0]
    if level:
        best[U] = max(level, key=lambda s: s[2])[0]
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


def _challenge_for(rng: random.Random, avoid: Sequence[Action] | None = None) -> Challenge:
    """A challenge as `new_challenge` draws them (2-3 distinct actions), seeded for a repeatable set; with
    `avoid`, one that a segment performing `avoid` does not answer (not a subsequence of it)."""
    while True:
        actions = tuple(rng.sample(list(Action), rng.choice((2, 3))))
        if avoid is None or not _is_subsequence(actions, tuple(avoid)):
            return Challenge(actions, nonce=f"eval-{rng.getrandbits(48):012x}")


def _is_subsequence(a: tuple[Action, ...], b: tuple[Action, ...]) -> bool:
    it = iter(b)
    return all(x in it for x in a)


# -- the builder --------------------------------------------------------------------------------------------
class AttackSet:
    """Builds genuine and attack presentations from ../shared/faces (passed in). Deterministic for a seed.
    Decoded videos are cached two at a time: build video by video when making many."""

    def __init__(self, faces_dir: str | Path, engine: FaceEngine, detector: LandmarkDetector, *,
                 seed: int = 7, fps: float = FPS) -> None:
        self.faces = Path(faces_dir)
        self.engine = engine
        self.detector = detector
        self.fps = fps
        self.seed = seed
        missing = [v for v in VIDEOS if not (self.faces / "video" / f"{v}.mp4").is_file()]
        missing += [f"spoof/image_{n}.jpg" for n in ("T1", "F1", "F2")
                    if not (self.faces / "spoof" / f"image_{n}.jpg").is_file()]
        if missing:
            raise FileNotFoundError(f"the attack set needs {', '.join(missing)} under {self.faces}")
        self._native = functools.lru_cache(maxsize=2)(self._load)
        self._enrol_cache: dict[str, list[tuple[float, np.ndarray]]] = {}
        self._tilt_cache: dict[tuple[str, ...], dict[Action, Pose]] = {}

    def _rng(self, *key: object) -> np.random.Generator:
        # crc32, not hash(): str hashes change from process to process
        return np.random.default_rng([self.seed, *(zlib.crc32(str(k).encode()) for k in key)])

    def _prng(self, *key: object) -> random.Random:
        # a repeatable evaluation set, not a secret: real challenges come from new_challenge's CSPRNG
        return random.Random(f"{self.seed}/" + "/".join(map(str, key)))  # noqa: S311

    def _load(self, video: str) -> tuple[np.ndarray, list[np.ndarray]]:
        return _decode_native(self.faces / "video" / f"{video}.mp4")

    def clip(self, video: str, t0: float, t1: float, phase: float = 0.0) -> list[Frame]:
        times, images = self._native(video)
        return _sample(times, images, t0, t1, self.fps, phase)

    def duration(self, video: str) -> float:
        return float(self._native(video)[0][-1])

    # -- identity ---------------------------------------------------------------------------------------
    def _embed(self, rgb: np.ndarray) -> np.ndarray | None:
        lm = self.detector.locate(rgb)
        if lm is None:
            return None
        return self.engine.embed_box(rgb, dlib.rectangle(*lm.box), check_quality=False).embedding

    def enrolled(self, video: str, avoid: tuple[float, float] | None = None, templates: int = 3
                 ) -> list[np.ndarray]:
        """The person's enrolment: `templates` near-frontal frames of their video, the farthest in time from
        `avoid` (the segment or photo being presented), so enrolment and presentation are different moments."""
        if video not in self._enrol_cache:
            cands = []
            for f in self.clip(video, 0.0, self.duration(video))[::6]:
                lm = self.detector.locate(f.rgb)
                if lm is not None and abs(head_pose(lm).yaw) < 12.0:
                    cands.append((f.t, self.engine.embed_box(f.rgb, dlib.rectangle(*lm.box),
                                                             check_quality=False).embedding))
            if not cands:
                raise ValueError(f"no frontal face to enrol in {video}")
            self._enrol_cache[video] = cands
        cands = self._enrol_cache[video]
        if avoid is None:
            return [e for _, e in cands[:: max(1, len(cands) // templates)][:templates]]
        mid = (avoid[0] + avoid[1]) / 2
        far = sorted(cands, key=lambda c: -abs(c[0] - mid))
        return [e for _, e in far[:templates]]

    def photo_frame(self, video: str, which: int) -> tuple[float, np.ndarray]:
        """A frontal frame for a photo attack: the most frontal one in the first (which=0) or second (1) half."""
        d = self.duration(video)
        lo, hi = (0.0, d / 2) if which == 0 else (d / 2, d)
        frames = self.clip(video, lo, hi)[::4]
        ms = measure_frames(frames, self.detector)
        ok = [(abs(m.yaw) + 0.5 * abs(m.roll), f) for f, m in zip(frames, ms, strict=True) if m.face]
        if not ok:
            raise ValueError(f"no face in {video} {lo:.1f}-{hi:.1f} s")
        _, best = min(ok, key=lambda x: x[0])
        return lo + best.t, best.rgb

    # -- genuine ----------------------------------------------------------------------------------------
    def genuine(self, seg: Segment) -> Presentation:
        frames = self.clip(seg.video, seg.t0, seg.t1)
        return Presentation("genuine", seg.label, frames, Challenge(seg.actions, nonce=f"eval-{seg.label}"),
                            self.enrolled(seg.video, (seg.t0, seg.t1)))

    # -- photo attacks ----------------------------------------------------------------------------------
    def still_photo(self, video: str, which: int = 0, challenge: Challenge | None = None,
                    seconds: float = 3.0) -> Presentation:
        t, rgb = self.photo_frame(video, which)
        rng = self._rng("still", video, which)
        challenge = challenge or _challenge_for(self._prng("still", video, which))
        frames = [Frame(_camera(rgb, rng, noise=2.0, quality=85), k / self.fps)
                  for k in range(int(seconds * self.fps) + 1)]
        return Presentation("still_photo", f"{video} @{t:.1f} s held still", frames, challenge,
                            self.enrolled(video, (t, t)), expected=("still_frames", "challenge_not_performed"))

    def _moved(self, kind: str, photo: np.ndarray, out_hw: tuple[int, int], key: tuple[object, ...],
               challenge: Challenge, fill: float, post: str = "") -> list[Frame]:
        rng = self._rng(kind, *key)
        background = _background(out_hw[0], out_hw[1], rng)
        tkey = (kind, *map(str, key))
        if tkey not in self._tilt_cache:
            self._tilt_cache[tkey] = action_tilts(photo, self.detector, fill, background)
        tilts = self._tilt_cache[tkey]
        glare_at = (float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.15, 0.4)))
        frames = []
        for t, pose in motion_plan(challenge, tilts, rng, self.fps):
            img = render_photo(photo, background, pose, fill)
            if post == "screen":
                img = _glare(_moire(img, phase=3.0 * t), rng, (glare_at[0] + 0.002 * pose.tx, glare_at[1]))
            frames.append(Frame(_camera(img, rng), round(t, 6)))
        return frames

    def photo_moved_3d(self, video: str, which: int = 0, challenge: Challenge | None = None,
                       *, kind: str = "photo_moved_3d") -> Presentation:
        t, rgb = self.photo_frame(video, which)
        challenge = challenge or _challenge_for(self._prng(kind, video, which))
        rng = self._rng(kind, "content", video, which)
        photo, post = rgb, ""
        if kind == "simulated_print":
            photo = degrade_print(rgb, rng)
        elif kind == "simulated_screen":
            photo, post = screen_content(rgb, rng), "screen"
        frames = self._moved(kind, photo, rgb.shape[:2], (video, which), challenge, fill=0.9, post=post)
        what = {"photo_moved_3d": "photo", "simulated_print": "print", "simulated_screen": "screen"}[kind]
        return Presentation(kind, f"{what} of {video} @{t:.1f} s, moved", frames, challenge,
                            self.enrolled(video, (t, t)),
                            expected=("planar_motion", "presentation_attack", "challenge_not_performed"))

    def simulated_print(self, video: str, which: int = 0, challenge: Challenge | None = None) -> Presentation:
        return self.photo_moved_3d(video, which, challenge, kind="simulated_print")

    def simulated_screen(self, video: str, which: int = 0, challenge: Challenge | None = None) -> Presentation:
        return self.photo_moved_3d(video, which, challenge, kind="simulated_screen")

    @functools.cached_property
    def _spoof_identity(self) -> np.ndarray:
        """The spoof images' person: the genuine image T1 when F1/F2 show the same face, else F1's face."""
        t1 = self._embed(self._spoof("T1"))
        f1 = self._embed(self._spoof("F1"))
        if f1 is None:
            raise ValueError("no face in spoof/image_F1.jpg")
        if t1 is not None and float(np.linalg.norm(t1 - f1)) <= 0.5:
            return t1
        return f1

    def _spoof(self, name: str) -> np.ndarray:
        return decode_image((self.faces / "spoof" / f"image_{name}.jpg").read_bytes())  # EXIF orientation

    def real_spoof(self, name: str, variant: int = 0, challenge: Challenge | None = None) -> Presentation:
        """The real print (F1) or tablet replay (F2) animated as a moved photo; the image already shows the
        attack instrument as a camera saw it, so no synthetic degradation is added."""
        kind = {"F1": "real_print", "F2": "real_replay"}[name]
        rgb = self._spoof(name)
        challenge = challenge or _challenge_for(self._prng(kind, variant))
        frames = self._moved(kind, rgb, rgb.shape[:2], (variant,), challenge, fill=1.0)
        return Presentation(kind, f"spoof/image_{name}.jpg moved (variant {variant})", frames, challenge,
                            [self._spoof_identity],
                            expected=("presentation_attack", "planar_motion", "challenge_not_performed"))

    def real_print(self, variant: int = 0, challenge: Challenge | None = None) -> Presentation:
        return self.real_spoof("F1", variant, challenge)

    def real_replay(self, variant: int = 0, challenge: Challenge | None = None) -> Presentation:
        return self.real_spoof("F2", variant, challenge)

    # -- recordings -------------------------------------------------------------------------------------
    def recapture(self, seg: Segment) -> list[Frame]:
        """The segment replayed: sampled half a frame later, cropped 5 %, brighter, JPEG q70."""
        rng = self._rng("recapture", seg.label)
        out = []
        for f in self.clip(seg.video, seg.t0, seg.t1, phase=0.5 / self.fps):
            h, w = f.rgb.shape[:2]
            dy, dx = int(0.025 * h), int(0.025 * w)
            crop = cv2.resize(f.rgb[dy:h - dy, dx:w - dx], (w, h), interpolation=cv2.INTER_LINEAR)
            bright = np.clip(crop.astype(np.int16) + 10, 0, 255).astype(np.uint8)
            out.append(Frame(_camera(bright, rng, noise=1.0, quality=70), f.t))
        return out

    def session_fingerprint(self, frames: Sequence[Frame]) -> np.ndarray:
        """The fingerprint the checker stores for an accepted session (same landmarks, same hash)."""
        return fingerprint(frames, [m.landmarks for m in measure_frames(frames, self.detector)])

    def replayed_recording(self, seg: Segment, *, same_actions: bool) -> Presentation:
        """same_actions=False: the recording submitted to a new session whose challenge it does not answer
        (no earlier fingerprint on record). True: the same actions asked again, the original accepted before."""
        frames = self.recapture(seg)
        enrolled = self.enrolled(seg.video, (seg.t0, seg.t1))
        if not same_actions:
            challenge = _challenge_for(self._prng("replay", seg.label), avoid=seg.actions)
            return Presentation("replayed_recording", f"{seg.label} replayed, new challenge", frames, challenge,
                                enrolled, expected=("challenge_not_performed",))
        earlier = self.session_fingerprint(self.clip(seg.video, seg.t0, seg.t1))
        return Presentation("replayed_recording", f"{seg.label} replayed, fingerprint on record", frames,
                            Challenge(seg.actions, nonce=f"eval-replay-{seg.label}"), enrolled, [earlier],
                            expected=("replayed_recording",))

    def face_swap(self, first: Segment, second: Segment, switch_s: float = 1.4) -> Presentation:
        """`first`'s person (the claimed identity) for `switch_s` seconds, then `second`'s person from 0.7 s into
        their segment on (their actions, which the challenge asks for), timestamps continuous."""
        a = [f for f in self.clip(first.video, first.t0, first.t1) if f.t < switch_s - 1e-6]
        b = [f for f in self.clip(second.video, second.t0, second.t1) if f.t >= 0.7 - 1e-6]
        step = 1.0 / self.fps
        size = (a[0].rgb.shape[1], a[0].rgb.shape[0])
        frames = list(a)
        for k, f in enumerate(b):
            rgb = f.rgb if f.rgb.shape[:2] == a[0].rgb.shape[:2] else cv2.resize(f.rgb, size)
            frames.append(Frame(rgb, round(a[-1].t + step * (k + 1), 6)))
        challenge = Challenge(second.actions, nonce=f"eval-swap-{first.label}-{second.label}")
        return Presentation("face_swap", f"{first.label} then {second.label}", frames, challenge,
                            self.enrolled(first.video, (first.t0, first.t1)),
                            expected=("face_changed", "not_enrolled_face"))

    # -- the whole set ----------------------------------------------------------------------------------
    def build_all(self, *, photos_per_video: int = 2, spoof_variants: int = 6, swaps: int = 20,
                  segments: Sequence[Segment] = SEGMENTS) -> Iterator[Presentation]:
        """Every genuine segment and every attack instance, grouped by video (to reuse decodes)."""
        for video in VIDEOS:
            for seg in (s for s in segments if s.video == video):
                yield self.genuine(seg)
                yield self.replayed_recording(seg, same_actions=False)
                yield self.replayed_recording(seg, same_actions=True)
            for which in range(photos_per_video):
                yield self.still_photo(video, which)
                yield self.photo_moved_3d(video, which)
                yield self.simulated_print(video, which)
                yield self.simulated_screen(video, which)
        for v in range(spoof_variants):
            yield self.real_print(v)
            yield self.real_replay(v)
        pairs = [(a, b) for a, b in itertools.permutations(segments, 2) if a.video != b.video]
        for a, b in self._prng("swaps").sample(pairs, min(swaps, len(pairs))):
            yield self.face_swap(a, b)
