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

The genuine segments live in `attack_segments`, the image effects in `attack_effects`, the moving photo in
`attack_motion`; this module puts them together into presentations.
"""

from __future__ import annotations

import functools
import itertools
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import dlib
import numpy as np

from facewarden.evaluation.attack_animate import (
    cylinder_points,
    paint_closed_eyes,
    piecewise_affine,
    relight,
    transfer_motion,
)
from facewarden.evaluation.attack_effects import camera, degrade_print, glare, moire, room_background, screen_content
from facewarden.evaluation.attack_motion import Pose, action_tilts, motion_plan, render_photo
from facewarden.evaluation.attack_replays import dropped, stretched, zoomed_and_tinted
from facewarden.evaluation.attack_segments import (
    DECODER_MAX_SIDE,
    FPS,
    SEGMENTS,
    VIDEOS,
    Segment,
    decode_native,
    sample_clip,
    shrink,
)
from facewarden.imaging import decode_image
from facewarden.imaging.video import Frame
from facewarden.liveness.blink import eye_aspect_ratio
from facewarden.liveness.challenge import Action, Challenge
from facewarden.liveness.landmarks import FaceLandmarks, LandmarkDetector
from facewarden.liveness.measures import measure_frames
from facewarden.liveness.media import fingerprint
from facewarden.liveness.pose import head_pose
from facewarden.vision.engine import FaceEngine

# SEGMENTS and Segment are re-exported: callers imported them from here before they moved.
__all__ = ["ATTACK_TYPES", "KNOWN_LIMITS", "SEGMENTS", "AttackSet", "Presentation", "Segment"]

ATTACK_TYPES = ("still_photo", "photo_moved_3d", "simulated_print", "simulated_screen", "real_print",
                "real_replay", "replayed_recording", "face_swap", "animated_photo", "warped_photo")
# Built and measured (bench_field.py), not stopped: the warped photo re-lit as it turns (see README, Liveness).
KNOWN_LIMITS = ("warped_photo_relit",)
REPLAY_VARIANTS = ("speed 0.8", "speed 1.25", "zoom 15% + tint", "every 3rd frame dropped")


def camera_all(frames: Sequence[Frame], rng: np.random.Generator) -> list[Frame]:
    """Frames re-captured by a camera (noise, JPEG q75): what a replay filmed or re-encoded gets."""
    return [Frame(camera(f.rgb, rng, noise=1.0, quality=75), f.t) for f in frames]


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
        self._original_fingerprints: dict[str, np.ndarray] = {}
        self._tilt_cache: dict[tuple[str, ...], dict[Action, Pose]] = {}

    def _rng(self, *key: object) -> np.random.Generator:
        # crc32, not hash(): str hashes change from process to process
        return np.random.default_rng([self.seed, *(zlib.crc32(str(k).encode()) for k in key)])

    def _prng(self, *key: object) -> random.Random:
        # a repeatable evaluation set, not a secret: real challenges come from new_challenge's CSPRNG
        return random.Random(f"{self.seed}/" + "/".join(map(str, key)))  # noqa: S311

    def _load(self, video: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """`video`: a name in video/ ("d3") or a path under the faces folder without ".mp4" ("video2/tpsmm_driving"),
        frames downscaled to the service decoder's 720 px."""
        path = self.faces / (f"{video}.mp4" if "/" in video else f"video/{video}.mp4")
        times, images = decode_native(path)
        return times, [shrink(im, DECODER_MAX_SIDE) for im in images]

    def clip(self, video: str, t0: float, t1: float, phase: float = 0.0) -> list[Frame]:
        times, images = self._native(video)
        return sample_clip(times, images, t0, t1, self.fps, phase)

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
        frames = [Frame(camera(rgb, rng, noise=2.0, quality=85), k / self.fps)
                  for k in range(int(seconds * self.fps) + 1)]
        return Presentation("still_photo", f"{video} @{t:.1f} s held still", frames, challenge,
                            self.enrolled(video, (t, t)), expected=("still_frames", "challenge_not_performed"))

    def _moved(self, kind: str, photo: np.ndarray, out_hw: tuple[int, int], key: tuple[object, ...],
               challenge: Challenge, fill: float, post: str = "") -> list[Frame]:
        rng = self._rng(kind, *key)
        background = room_background(out_hw[0], out_hw[1], rng)
        tkey = (kind, *map(str, key))
        if tkey not in self._tilt_cache:
            self._tilt_cache[tkey] = action_tilts(photo, self.detector, fill, background)
        tilts = self._tilt_cache[tkey]
        glare_at = (float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.15, 0.4)))
        frames = []
        for t, pose in motion_plan(challenge, tilts, rng, self.fps):
            img = render_photo(photo, background, pose, fill)
            if post == "screen":
                img = glare(moire(img, phase=3.0 * t), rng, (glare_at[0] + 0.002 * pose.tx, glare_at[1]))
            frames.append(Frame(camera(img, rng), round(t, 6)))
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

    # -- animated photos (issue 16) --------------------------------------------------------------------
    @functools.cached_property
    def _attacker_landmarks(self) -> LandmarkDetector:
        return LandmarkDetector("dlib68")  # the attacker's own tool: 68 points, so eyelids and jaw move too

    def _photo_points(self, video: str, which: int) -> tuple[float, np.ndarray, np.ndarray]:
        t, photo = self.photo_frame(video, which)
        lm = self._attacker_landmarks.locate(photo)
        if lm is None:
            raise ValueError(f"no 68 landmarks on the photo of {video}")
        return t, photo, lm.points.astype(np.float64)

    def animated_photo(self, driver: Segment, victim: str, which: int = 0) -> Presentation:
        """`victim`'s photo driven by the attacker's own performance of the challenge (`driver`, a genuine
        segment of another person): the driver's landmark motion moves the photo by a piecewise-affine warp,
        the eyes close with the driver's (warped, then painted shut)."""
        t, photo, points = self._photo_points(victim, which)
        rng = self._rng("animated", driver.label, victim, which)
        frames_in = self.clip(driver.video, driver.t0, driver.t1)
        marks = [self._attacker_landmarks.locate(f.rgb) for f in frames_in]
        first = next((m for m in marks if m is not None), None)
        if first is None:
            raise ValueError(f"no 68 landmarks in the driver {driver.label}")
        held: list[FaceLandmarks] = []
        for m in marks:  # a frame without landmarks keeps the last seen
            held.append(m if m is not None else (held[-1] if held else first))
        tracks = [m.points.astype(np.float64) for m in held]
        ear = np.array([eye_aspect_ratio(m) for m in held])
        open_level = max(1e-6, float(np.median(ear[: max(3, int(0.7 * self.fps))])))
        frames = []
        for f, target in zip(frames_in, transfer_motion(points, tracks), strict=True):
            k = len(frames)
            closed = float(np.clip((0.8 - ear[k] / open_level) / 0.3, 0.0, 1.0))
            img = paint_closed_eyes(piecewise_affine(photo, points, target), target, closed)
            frames.append(Frame(camera(img, rng), f.t))
        return Presentation("animated_photo", f"photo of {victim} @{t:.1f} s driven by {driver.label}", frames,
                            Challenge(driver.actions, nonce=f"eval-animated-{driver.label}-{victim}"),
                            self.enrolled(victim, (t, t)), expected=("texture_unchanged", "planar_motion"))

    def warped_photo(self, victim: str, which: int = 0, challenge: Challenge | None = None, *,
                     relit: bool = False) -> Presentation:
        """`victim`'s photo turned on a cylinder model in time with the challenge (no driver): yaw 28 degrees
        for a turn, pitch 22 for a look-up, each eased in over 0.3 s, held, eased out, one action a second;
        a blink is the eyes painted shut for 0.2 s. The sign of each turn is chosen with the checker's own
        landmark detector (an adaptive attacker). `relit`: the shading follows the fake turn as well
        (`attack_animate.relight`), the attack that answers the texture check."""
        t, photo, points = self._photo_points(victim, which)
        rng = self._rng("warped", victim, which)
        challenge = challenge or _challenge_for(self._prng("warped", victim, which))
        base = self.detector.locate(photo)
        probe = self.detector.locate(piecewise_affine(photo, points, cylinder_points(points, 25.0, 0.0)))
        left = 1.0 if base is None or probe is None or head_pose(probe).yaw >= head_pose(base).yaw else -1.0
        target_pose = {Action.TURN_LEFT: (28.0 * left, 0.0), Action.TURN_RIGHT: (-28.0 * left, 0.0),
                       Action.LOOK_UP: (0.0, 22.0)}
        onsets = [1.0 + k + float(rng.uniform(-0.1, 0.1)) for k in range(len(challenge.actions))]
        frames = []
        for i in range(int((onsets[-1] + 1.3) * self.fps) + 1):
            ti = i / self.fps
            yaw = pitch = closed = 0.0
            for action, t_on in zip(challenge.actions, onsets, strict=True):
                x = ti - t_on
                if action == Action.BLINK:
                    closed = max(closed, 1.0 if 0.0 <= x <= 0.2 else 0.0)
                    continue
                w = 0.0 if x < 0 or x > 0.95 else min(1.0, x / 0.3, (0.95 - x) / 0.3)
                yaw += w * target_pose[action][0]
                pitch += w * target_pose[action][1]
            target = cylinder_points(points, yaw, pitch)
            img = paint_closed_eyes(piecewise_affine(photo, points, target), target, closed)
            if relit:
                img = relight(img, target, yaw, pitch)
            frames.append(Frame(camera(img, rng), round(ti, 6)))
        kind = "warped_photo_relit" if relit else "warped_photo"
        return Presentation(kind, f"photo of {victim} @{t:.1f} s warped on a cylinder", frames,
                            challenge, self.enrolled(victim, (t, t)), expected=("texture_unchanged", "planar_motion"))

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
            out.append(Frame(camera(bright, rng, noise=1.0, quality=70), f.t))
        return out

    def original_fingerprint(self, seg: Segment) -> np.ndarray:
        """The fingerprint the segment's accepted original left on record (computed once per segment)."""
        if seg.label not in self._original_fingerprints:
            self._original_fingerprints[seg.label] = self.session_fingerprint(self.clip(seg.video, seg.t0, seg.t1))
        return self._original_fingerprints[seg.label]

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
        earlier = self.original_fingerprint(seg)
        return Presentation("replayed_recording", f"{seg.label} replayed, fingerprint on record", frames,
                            Challenge(seg.actions, nonce=f"eval-replay-{seg.label}"), enrolled, [earlier],
                            expected=("replayed_recording",))

    def replay_variant(self, seg: Segment, variant: str) -> Presentation:
        """The segment's original accepted and on record, then replayed answering the same actions as
        `variant` (REPLAY_VARIANTS): slower or faster with interpolated frames, zoomed and tinted, thinned."""
        times, images = self._native(seg.video)
        rng = self._rng("replay-variant", variant, seg.label)
        if variant.startswith("speed "):
            frames = camera_all(stretched(times, images, seg.t0, seg.t1, self.fps, float(variant.split()[1])), rng)
        elif variant == "zoom 15% + tint":
            frames = zoomed_and_tinted(self.clip(seg.video, seg.t0, seg.t1, phase=0.5 / self.fps), rng)
        elif variant == "every 3rd frame dropped":
            frames = dropped(camera_all(self.clip(seg.video, seg.t0, seg.t1, phase=0.5 / self.fps), rng))
        else:
            raise ValueError(f"unknown replay variant {variant!r}; one of {REPLAY_VARIANTS}")
        earlier = self.original_fingerprint(seg)
        return Presentation("replayed_recording", f"{seg.label} replayed, {variant}", frames,
                            Challenge(seg.actions, nonce=f"eval-replay-{variant}-{seg.label}"),
                            self.enrolled(seg.video, (seg.t0, seg.t1)), [earlier], expected=("replayed_recording",))

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
