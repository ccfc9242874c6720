"""Procedural stylised portraits with exact 19-class label maps (CelebAMask-HQ ids from :mod:`face_studio.labels`).

Each face is drawn twice from the same polygons: once into the ground-truth label map, once into an
"appearance" map that also holds details the labels don't name (iris, pupil, teeth, nostrils, glasses frame,
occluder). The picture is coloured from the appearance map, then shaded, outlined, textured and slightly
blurred; the label map stays exact. Everything comes from ``numpy.random.default_rng(seed)``, so a seed always
gives the same picture and labels.

Variety, so that a model must learn shapes rather than colours: pose (roll, yaw), scale and position; skin, hair,
clothes and lip colours (including dyed hair and skin-coloured backgrounds); hair styles (bald, short, fringe,
long), hats, glasses (clear or dark), earrings, necklaces, an open or closed mouth; textured or cluttered
backgrounds; and occluders (label 0, like a hand or a microphone in CelebAMask-HQ) in front of the face.

Conventions: ``l_*`` is the person's left, so it appears on the image's right side (a portrait facing you).
Glasses (``eye_g``) cover frames and lenses; what shows through a lens is labelled glasses.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from face_studio.atomic import atomic_write, save_image
from face_studio.errors import UserError
from face_studio.labels import LABEL2ID, NUM_LABELS

L = LABEL2ID  # short alias for the ids below

# Appearance-only ids (never in the label map): details drawn inside a labelled region, or label-0 objects.
IRIS, PUPIL, SCLERA, TEETH, NOSTRIL, FRAME, OCCLUDER = 32, 33, 34, 35, 36, 37, 38

# Colour ranges (RGB). Skin tones run from very light to very dark.
SKIN_TONES = np.array([(255, 224, 196), (241, 194, 167), (224, 172, 128), (198, 134, 92), (161, 102, 63),
                       (120, 72, 44), (87, 52, 33), (236, 188, 180)], dtype=np.float32)
HAIR_COLOURS = np.array([(20, 16, 14), (45, 30, 22), (82, 52, 32), (128, 84, 48), (196, 150, 88),
                         (232, 206, 140), (150, 60, 30), (170, 170, 170), (235, 235, 230),
                         (40, 70, 160), (200, 60, 140), (60, 150, 90)], dtype=np.float32)
HAIR_WEIGHTS = np.array([5, 5, 4, 3, 2, 2, 1.5, 1, 0.7, 0.5, 0.5, 0.4])
IRIS_COLOURS = np.array([(60, 40, 25), (95, 60, 30), (60, 110, 160), (70, 120, 80), (120, 120, 120)],
                        dtype=np.float32)
LIPSTICK = np.array([(170, 20, 40), (200, 60, 90), (120, 20, 50), (220, 90, 80), (90, 30, 60)], dtype=np.float32)
METALS = np.array([(212, 175, 55), (200, 200, 210), (230, 190, 120), (240, 240, 255)], dtype=np.float32)

# Bounds of one `synth` run, checked before any drawing. Measured on this machine: a 2048 px face takes ~5 s and
# ~620 MB of memory to draw; image + mask PNGs take 1.34 bytes a pixel at 256 px, 1.04 at 512, 0.22 at 2048.
MIN_SIZE = 64  # smaller faces lose their eyes and lips
MAX_SIZE = 2048  # memory grows with size² (100000 px was killed for lack of memory)
MAX_COUNT = 100_000
MAX_SEED = 2**32 - 1  # numpy seeds; face i uses seed + i
DISK_BYTES_PER_PIXEL = 1.5  # upper bound of the measured PNG sizes above
DISK_MARGIN_BYTES = 100 * 2**20  # leave this much free

# Smallest size (pixels) of tiny parts, so they survive rasterisation at 128 px.
MIN_PART_PX = 2.0


@dataclass
class FaceSpec:
    """What a face was drawn with (random choices made from the seed)."""

    seed: int
    size: int
    hair: str  # "bald", "short", "fringe", "long"
    hat: bool
    glasses: str  # "none", "clear", "dark"
    earrings: bool
    necklace: bool
    mouth_open: bool
    occluder: bool
    yaw: float
    roll: float
    drawn: set[int] = field(default_factory=set)

    def to_json(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "drawn"}
        d["drawn"] = sorted(self.drawn)
        return d


class _Canvas:
    """Two 'L' layers drawn from the same polygons: ground truth and appearance."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.gt = Image.new("L", (size, size), 0)
        self.app = Image.new("L", (size, size), 0)
        self._gt = ImageDraw.Draw(self.gt)
        self._app = ImageDraw.Draw(self.app)
        self.drawn: set[int] = set()

    def fill(self, pts: np.ndarray, gt: int | None, app: int | None = -1) -> None:
        """Fill polygon ``pts`` with ``gt`` in the label map and ``app`` (default: same) in the appearance map."""
        poly = [(float(x), float(y)) for x, y in pts]
        if len(poly) < 3:
            return
        if gt is not None:
            self._gt.polygon(poly, fill=gt)
            if gt:
                self.drawn.add(gt)
        app = gt if app == -1 else app
        if app is not None:
            self._app.polygon(poly, fill=app)

    def line(self, pts: np.ndarray, width: float, gt: int | None, app: int | None = -1) -> None:
        poly = [(float(x), float(y)) for x, y in pts]
        w = max(1, int(round(width)))
        if gt is not None:
            self._gt.line(poly, fill=gt, width=w, joint="curve")
            if gt:
                self.drawn.add(gt)
        app = gt if app == -1 else app
        if app is not None:
            self._app.line(poly, fill=app, width=w, joint="curve")

    def labels(self) -> np.ndarray:
        return np.asarray(self.gt, dtype=np.uint8).copy()


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48, t0: float = 0.0,
             t1: float = 2 * math.pi) -> np.ndarray:
    t = np.linspace(t0, t1, n, endpoint=False if t1 - t0 >= 2 * math.pi - 1e-9 else True)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


class _Pose:
    """Maps face coordinates to pixels.

    ``u`` runs -1..1 across the face (image left to right), ``v`` -1 (top of the head) .. 1 (chin).
    Points on the face surface turn with yaw as on a sphere: ``x = sin(asin(u) + yaw)``, with extra depth
    for the nose; the head outline, hair, neck and clothes stay put (a sphere's silhouette doesn't change as
    it turns).
    """

    def __init__(self, cx: float, cy: float, a: float, b: float, roll: float, yaw: float) -> None:
        self.cx, self.cy, self.a, self.b = cx, cy, a, b
        self.cos_r, self.sin_r = math.cos(roll), math.sin(roll)
        self.yaw = yaw

    def surface(self, uv: np.ndarray, depth: float | np.ndarray = 0.0) -> np.ndarray:
        u, v = uv[:, 0], uv[:, 1]
        theta = np.arcsin(np.clip(u, -0.999, 0.999))
        x = np.sin(theta + self.yaw) + np.asarray(depth) * math.sin(self.yaw)
        # keep features inside the head outline when turned far
        return self.flat(np.stack([np.clip(x, -0.97, 0.97), v], axis=1))

    def flat(self, uv: np.ndarray) -> np.ndarray:
        x = uv[:, 0] * self.a
        y = uv[:, 1] * self.b
        return np.stack([self.cx + x * self.cos_r - y * self.sin_r, self.cy + x * self.sin_r + y * self.cos_r], axis=1)


def _pick(rng: np.random.Generator, colours: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    p = None if weights is None else weights / weights.sum()
    return colours[rng.choice(len(colours), p=p)].copy()


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float) -> np.ndarray:
    return np.clip(colour * rng.uniform(1 - amount, 1 + amount) + rng.normal(0, amount * 40, 3), 0, 255)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    h, s, v = rng.uniform(0, 1), rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.95)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32) * 255


def _spec(rng: np.random.Generator, seed: int, size: int) -> FaceSpec:
    hair = str(rng.choice(["bald", "short", "fringe", "long"], p=[0.08, 0.3, 0.25, 0.37]))
    hat = bool(rng.random() < 0.18)
    if hat and hair in ("bald", "short", "fringe"):
        hair = "long" if rng.random() < 0.6 else "bald"  # a hat hides short hair: keep what stays visible honest
    glasses = str(rng.choice(["none", "clear", "dark"], p=[0.62, 0.28, 0.10]))
    return FaceSpec(seed=seed, size=size, hair=hair, hat=hat, glasses=glasses,
                    earrings=bool(rng.random() < 0.3), necklace=bool(rng.random() < 0.25),
                    mouth_open=bool(rng.random() < 0.3), occluder=bool(rng.random() < 0.25),
                    yaw=float(rng.uniform(-0.45, 0.45)), roll=float(np.clip(rng.normal(0, 0.14), -0.4, 0.4)))


def _background(rng: np.random.Generator, size: int, skin: np.ndarray, hair: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.choice(["gradient", "stripes", "clutter", "noise"], p=[0.35, 0.2, 0.3, 0.15])
    c1 = _random_colour(rng)
    # Sometimes skin- or hair-like: a model must not label "skin-coloured" as skin.
    if rng.random() < 0.2:
        c1 = _jitter(rng, skin if rng.random() < 0.6 else hair, 0.15)
    c2 = _random_colour(rng)
    ang = rng.uniform(0, 2 * math.pi)
    g = (np.cos(ang) * xx + np.sin(ang) * yy)
    g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
    bg = c1[None, None] * (1 - g[..., None]) + c2[None, None] * g[..., None] * 0.5 + c1[None, None] * g[..., None] * 0.5
    if kind == "stripes":
        period = rng.uniform(0.04, 0.2)
        s = (np.sin((np.cos(ang) * yy - np.sin(ang) * xx) * 2 * math.pi / period) > 0)[..., None]
        bg = np.where(s, bg, bg * 0.55 + c2 * 0.45)
    elif kind == "clutter":
        img = Image.fromarray(bg.clip(0, 255).astype(np.uint8))
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(4, 14))):
            c = tuple(int(x) for x in (_random_colour(rng) if rng.random() < 0.7 else _jitter(rng, skin, 0.2)))
            x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
            w, h = rng.uniform(0.05, 0.45, 2) * size
            if rng.random() < 0.5:
                d.ellipse([x0, y0, x0 + w, y0 + h], fill=c)
            else:
                d.rectangle([x0, y0, x0 + w, y0 + h], fill=c)
        bg = np.asarray(img, dtype=np.float32)
    elif kind == "noise":
        small = rng.normal(0, 1, (8, 8)).astype(np.float32)
        n = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC), dtype=np.float32)
        bg = bg + (n[..., None] * 30) * (c2 - c1)[None, None] / 255
    return bg


def render_face_with_spec(seed: int, size: int = 512) -> tuple[Image.Image, np.ndarray, FaceSpec]:
    """Draw face ``seed`` at ``size`` px. Returns the RGB picture, its uint8 label map and what was drawn."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be {MIN_SIZE}…{MAX_SIZE} px (got {size}).")
    rng = np.random.default_rng(seed)
    spec = _spec(rng, seed, size)
    S = float(size)
    cv = _Canvas(size)

    # 1. Pose and proportions.
    a = S * rng.uniform(0.13, 0.23)  # half-width of the face
    b = a * rng.uniform(1.22, 1.42)  # half-height (top of the head to the chin)
    cx = S * 0.5 + rng.uniform(-0.1, 0.1) * S
    cy = S * rng.uniform(0.36, 0.5)
    cy = min(cy, S * 0.88 - 1.9 * b * 0.55)  # keep the shoulders' top inside the picture
    pose = _Pose(cx, cy, a, b, spec.roll, spec.yaw)
    jaw = rng.uniform(0.12, 0.4)
    side = 1 if spec.yaw > 0 else -1  # the side (in u) that turns away from the camera
    turn = abs(spec.yaw)

    # 2. Long hair behind the head and shoulders.
    hair_len = rng.uniform(1.3, 2.4)
    if spec.hair == "long":
        w = rng.uniform(1.15, 1.45)
        pts = np.concatenate([_ellipse(0, -0.05, w, 1.1, 40, math.pi, 2 * math.pi),
                              np.array([[w, hair_len], [w * 0.8, hair_len + 0.12], [-w * 0.8, hair_len + 0.12],
                                        [-w, hair_len]])])
        cv.fill(pose.flat(pts), L["hair"])

    # 3. Clothes and neck.
    neck_w = rng.uniform(0.36, 0.52)
    shoulder_v = rng.uniform(1.45, 1.75)
    sw = rng.uniform(2.0, 2.9)
    cloth = np.array([[-neck_w * 1.2, shoulder_v - 0.05], [neck_w * 1.2, shoulder_v - 0.05],
                      [sw * 0.8, shoulder_v + 0.25], [sw, shoulder_v + 0.7], [sw, 6], [-sw, 6],
                      [-sw, shoulder_v + 0.7], [-sw * 0.8, shoulder_v + 0.25]])
    neck = np.array([[-neck_w, 0.45], [neck_w, 0.45], [neck_w * 1.05, shoulder_v + 0.1],
                     [-neck_w * 1.05, shoulder_v + 0.1]])
    cv.fill(pose.flat(neck), L["neck"])
    cv.fill(pose.flat(cloth), L["cloth"])
    neckline = str(rng.choice(["round", "v", "high"], p=[0.45, 0.35, 0.2]))
    if neckline == "round":
        cv.fill(pose.flat(_ellipse(0, shoulder_v - 0.05, neck_w * 1.2, rng.uniform(0.15, 0.4), 24, 0, math.pi)),
                L["neck"])
    elif neckline == "v":
        depth = rng.uniform(0.35, 0.8)
        cv.fill(pose.flat(np.array([[-neck_w * 1.2, shoulder_v - 0.06], [neck_w * 1.2, shoulder_v - 0.06],
                                    [0, shoulder_v + depth]])), L["neck"])
    else:  # a high collar covers the lower neck
        cv.fill(pose.flat(np.array([[-neck_w * 1.1, shoulder_v - 0.35], [neck_w * 1.1, shoulder_v - 0.35],
                                    [neck_w * 1.3, shoulder_v + 0.1], [-neck_w * 1.3, shoulder_v + 0.1]])),
                L["cloth"])
    if spec.necklace:
        nv = shoulder_v + (0.05 if neckline != "high" else -0.45)
        chain = _ellipse(0, nv - 0.25, neck_w * 1.0, rng.uniform(0.3, 0.5), 20, 0.15, math.pi - 0.15)
        cv.line(pose.flat(chain), max(MIN_PART_PX, a * rng.uniform(0.04, 0.08)), L["neck_l"])
        if rng.random() < 0.6:  # a pendant
            tip = pose.flat(chain[len(chain) // 2][None])[0]
            r = max(MIN_PART_PX, a * rng.uniform(0.06, 0.12))
            cv.fill(_ellipse(tip[0], tip[1] + r * 0.7, r, r * 1.2, 16), L["neck_l"])

    # 4. Ears (behind the face outline; the far ear hides as the head turns).
    ear_v, ear_h, ear_w = rng.uniform(-0.05, 0.08), rng.uniform(0.22, 0.3), rng.uniform(0.14, 0.2)
    ears = {}
    for sgn, name in ((-1, "r_ear"), (1, "l_ear")):
        if sgn == side and turn > 0.28:
            continue  # turned away: hidden behind the head
        # centred just outside the outline, so at least its outer rim shows; the far ear slides behind the head
        u_c = sgn * (1.0 + 0.2 * ear_w) - 0.3 * math.sin(spec.yaw)
        ears[name] = pose.flat(_ellipse(u_c, ear_v, ear_w, ear_h, 24))
    hide_ears = spec.hair == "long" and rng.random() < 0.5  # long hair over the ears
    if hide_ears:
        ears = {}
    for name, pts in ears.items():
        cv.fill(pts, L[name])

    # 5. Face (skin).
    t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    u0, v0 = np.cos(t), np.sin(t)
    u = np.where(v0 > 0, u0 * (1 - jaw * v0 ** 2), u0)
    v = np.where(v0 > 0, v0, v0 * 1.0)
    head = np.stack([u, v], axis=1)
    cv.fill(pose.flat(head), L["skin"])

    # 6. Hair on the head.
    hairline = rng.uniform(-0.72, -0.45)
    hw = rng.uniform(1.04, 1.14)
    top = rng.uniform(1.05, 1.22)
    if spec.hair in ("short", "fringe", "long"):
        n = 40
        outer = _ellipse(0, 0, hw, top, n, math.pi, 2 * math.pi)  # left → right over the top
        side_v = rng.uniform(-0.15, 0.25) if spec.hair != "long" else rng.uniform(0.2, 0.5)
        if ears:
            side_v = min(side_v, ear_v - 0.05)  # hair stops above the ear lobes (or is tucked behind the ears)
        outer = np.concatenate([[[-hw, side_v]], outer, [[hw, -0.02], [hw, side_v]]])
        uu = np.linspace(0.99, -0.99, 30)
        if spec.hair == "fringe":
            fringe_v = rng.uniform(-0.45, -0.2)
            vv = fringe_v + 0.06 * np.sin(uu * rng.uniform(6, 14) + rng.uniform(0, 6)) - 0.05 * uu * rng.normal()
        else:
            part = rng.uniform(-0.5, 0.5)
            vv = hairline + 0.12 * np.exp(-((uu - part) ** 2) / 0.08) * rng.uniform(0, 1) + 0.12 * uu ** 2
        vv = np.minimum(vv, side_v)
        inner_side = np.where(np.abs(uu) > 0.8, np.minimum(side_v, vv + (np.abs(uu) - 0.8) * 4), vv)
        inner = pose.surface(np.stack([uu, inner_side], axis=1))
        cv.fill(np.concatenate([pose.flat(outer), inner]), L["hair"])
        if spec.hair == "long" and hide_ears:  # locks falling over the ears to the shoulders
            for sgn in (-1, 1):
                lock = np.array([[sgn * 0.9, -0.1], [sgn * (hw + 0.08), -0.1], [sgn * (hw + 0.12), hair_len * 0.75],
                                 [sgn * 0.78, hair_len * 0.7], [sgn * 0.86, 0.4]])
                cv.fill(pose.flat(lock), L["hair"])

    # 7. Nose, glasses, eyes, brows, mouth on the face surface (later parts win in the labels, as in
    #    CelebAMask-HQ's own mask merging: eyes and brows show through glasses).
    ey = rng.uniform(-0.12, 0.04)
    ex = rng.uniform(0.3, 0.4)
    ew = rng.uniform(0.13, 0.19)
    eh = rng.uniform(0.045, 0.1)
    details = []  # (region, polygon, appearance id): drawn in the picture only, inside the region

    ny = rng.uniform(0.3, 0.42)
    nw = rng.uniform(0.1, 0.16)
    nose_uv = np.array([[-0.045, ey + 0.02], [0.045, ey + 0.02], [nw * 0.6, ny - 0.08], [nw, ny],
                        [nw * 0.4, ny + 0.05], [-nw * 0.4, ny + 0.05], [-nw, ny], [-nw * 0.6, ny - 0.08]])
    depth = np.array([0.2, 0.2, 0.35, 0.25, 0.3, 0.3, 0.25, 0.35])
    cv.fill(pose.surface(nose_uv, depth), L["nose"])
    for sgn in (-1, 1):
        c = pose.surface(np.array([[sgn * nw * 0.45, ny + 0.015]]), 0.3)[0]
        r = max(1.0, nw * a * 0.22)
        details.append(("nose", _ellipse(c[0], c[1], r * 1.3, r * 0.7, 10), NOSTRIL))

    lens_polys: list[np.ndarray] = []
    frames: list[tuple[np.ndarray, float]] = []
    if spec.glasses != "none":
        shape_round = rng.random() < 0.5
        lw, lh = ew * rng.uniform(1.3, 1.6), eh * rng.uniform(2.0, 3.0)
        frame = max(1.5, a * rng.uniform(0.025, 0.05))
        t = np.linspace(0, 2 * math.pi, 32, endpoint=False)
        c, s_ = np.cos(t), np.sin(t)
        for sgn in (-1, 1):
            if shape_round:
                uv = np.stack([sgn * ex + lw * c, ey + lh * s_], 1)
            else:  # a rounded rectangle (superellipse)
                uv = np.stack([sgn * ex + lw * np.sign(c) * np.abs(c) ** 0.4,
                               ey + lh * np.sign(s_) * np.abs(s_) ** 0.4], 1)
            poly = pose.surface(uv)
            lens_polys.append(poly)
            cv.fill(poly, L["eye_g"], None)  # lens: glasses in the labels; the eye shows through in the picture
            frames.append((np.concatenate([poly, poly[:1]]), frame))
        frames.append((pose.surface(np.array([[-ex + lw * 0.95, ey - lh * 0.3], [0, ey - lh * 0.45],
                                              [ex - lw * 0.95, ey - lh * 0.3]])), frame))
        for sgn in (-1, 1):
            if sgn == side and turn > 0.15:
                continue
            frames.append((pose.surface(np.array([[sgn * (ex + lw), ey - lh * 0.3], [sgn * 0.99, ey - lh * 0.2]])),
                           frame))
        for pts, width in frames:
            cv.line(pts, width, L["eye_g"], None)

    by = ey - rng.uniform(0.14, 0.22)
    bt = rng.uniform(0.035, 0.075)
    arch = rng.uniform(0.0, 0.08)
    iris_c = _pick(rng, IRIS_COLOURS)
    for sgn, eye, brow in ((-1, "r_eye", "r_brow"), (1, "l_eye", "l_brow")):
        uu = sgn * ex + np.linspace(-ew, ew, 16)
        s = (uu - sgn * ex) / ew
        up = ey - eh * np.sqrt(np.clip(1 - s ** 2, 0, 1)) * (1 + 0.15 * s * sgn)
        lo = ey + eh * 0.75 * np.sqrt(np.clip(1 - s ** 2, 0, 1))
        cv.fill(pose.surface(np.concatenate([np.stack([uu, up], 1), np.stack([uu[::-1], lo[::-1]], 1)])),
                L[eye], SCLERA)
        bs = np.linspace(-1.15, 1.25, 14) * sgn  # inner end to outer end, the tail thinner
        bu = sgn * ex + bs * ew
        bv = by - arch * np.cos(bs / 1.25 * math.pi / 2)
        thick = bt * (1 - 0.5 * np.clip(bs * sgn, 0, 1.25) / 1.25)
        brow_poly = np.concatenate([np.stack([bu, bv - thick / 2], 1),
                                    np.stack([bu[::-1], (bv + thick / 2)[::-1]], 1)])
        cv.fill(pose.surface(brow_poly), L[brow])
    iris_r = eh * rng.uniform(0.8, 1.1)
    look = rng.uniform(-0.3, 0.3) * ew
    for sgn, eye in ((-1, "r_eye"), (1, "l_eye")):
        c = pose.surface(np.array([[sgn * ex + look, ey]]))[0]
        r = max(1.0, iris_r * a * math.cos(spec.yaw * 0.5))
        details.append((eye, _ellipse(c[0], c[1], r, r, 20), IRIS))
        details.append((eye, _ellipse(c[0], c[1], r * 0.45, r * 0.45, 12), PUPIL))

    my = max(ny + 0.15, rng.uniform(0.56, 0.68))
    mw = rng.uniform(0.24, 0.36)
    ul = rng.uniform(0.04, 0.07)
    ll = rng.uniform(0.05, 0.09)
    gap = rng.uniform(0.05, 0.12) if spec.mouth_open else 0.0
    smile = rng.uniform(-0.02, 0.06)
    mu = np.linspace(-mw, mw, 21)
    s = mu / mw
    arc = np.sqrt(np.clip(1 - s ** 2, 0, 1))
    line_v = my + smile * s ** 2
    bow = ul * (1 - 0.35 * np.exp(-(s ** 2) / 0.02))
    upper_top = line_v - bow * arc - gap / 2
    upper_bot = line_v - gap / 2 * arc
    lower_top = line_v + gap / 2 * arc
    lower_bot = line_v + ll * arc + gap / 2
    if spec.mouth_open:
        inner = np.concatenate([np.stack([mu, upper_bot], 1), np.stack([mu[::-1], lower_top[::-1]], 1)])
        cv.fill(pose.surface(inner), L["mouth"])
        teeth = np.concatenate([np.stack([mu * 0.7, upper_bot], 1),
                                np.stack([mu[::-1] * 0.7, (upper_bot + gap * 0.4)[::-1]], 1)])
        details.append(("mouth", pose.surface(teeth), TEETH))
    cv.fill(pose.surface(np.concatenate([np.stack([mu, upper_top], 1), np.stack([mu[::-1], upper_bot[::-1]], 1)])),
            L["u_lip"])
    cv.fill(pose.surface(np.concatenate([np.stack([mu, lower_top], 1), np.stack([mu[::-1], lower_bot[::-1]], 1)])),
            L["l_lip"])
    for pts, width in frames:  # the frames sit in front of everything in the picture
        cv.line(pts, width, None, FRAME)

    # 8. Earrings (under visible ears), hat.
    if spec.earrings and ears:
        r = max(MIN_PART_PX, a * rng.uniform(0.05, 0.09))
        drop = rng.random() < 0.5
        for pts in ears.values():
            lobe = pts[np.argmax(pts[:, 1] * pose.cos_r - pts[:, 0] * pose.sin_r)]
            ry = r * (1.8 if drop else 1.0)
            cv.fill(_ellipse(lobe[0], lobe[1] + ry * 0.9, r, ry, 16), L["ear_r"])
    if spec.hat:
        brim_v = rng.uniform(-0.72, -0.5)
        crown = rng.uniform(0.05, 0.35)
        hw2 = rng.uniform(1.05, 1.2)
        dome = _ellipse(0, brim_v, hw2, (1 + brim_v) + crown + 0.25, 30, math.pi, 2 * math.pi)
        cv.fill(pose.flat(np.concatenate([dome, [[hw2, brim_v + 0.08], [-hw2, brim_v + 0.08]]])), L["hat"])
        if rng.random() < 0.6:  # a brim or a peak
            bw = hw2 + rng.uniform(0.1, 0.45)
            cv.fill(pose.flat(_ellipse(0, brim_v + 0.04, bw, rng.uniform(0.05, 0.12), 30)), L["hat"])

    # 9. An occluder in front (label 0), kept off the parts it would erase completely.
    occluder_poly = None
    if spec.occluder:
        before = cv.labels()
        present = set(np.unique(before).tolist())
        for _attempt in range(4):
            edge = rng.integers(0, 3)
            w = S * rng.uniform(0.1, 0.25)
            length = S * rng.uniform(0.25, 0.55)
            pos = rng.uniform(0.2, 0.8) * S
            if edge == 0:  # from the bottom
                box = [pos - w / 2, S - length, pos + w / 2, S + w]
            elif edge == 1:  # from the left
                box = [-w, pos - w / 2, length, pos + w / 2]
            else:
                box = [S - length, pos - w / 2, S + w, pos + w / 2]
            test = Image.new("L", (size, size), 0)
            ImageDraw.Draw(test).rounded_rectangle(box, radius=w / 2, fill=1)
            covered = np.asarray(test, dtype=bool)
            left = set(np.unique(before[~covered]).tolist())
            if present <= left | {0}:
                occluder_poly = box
                break
        if occluder_poly is not None:
            cv._gt.rounded_rectangle(occluder_poly, radius=(occluder_poly[2] - occluder_poly[0]) / 4, fill=0)
            cv._app.rounded_rectangle(occluder_poly, radius=(occluder_poly[2] - occluder_poly[0]) / 4,
                                      fill=OCCLUDER)
        else:
            spec.occluder = False

    labels = cv.labels()
    app = np.asarray(cv.app, dtype=np.uint8).copy()
    # appearance-only details, clipped to their (still visible) region
    for region, poly, app_id in details:
        tmp = Image.new("L", (size, size), 0)
        ImageDraw.Draw(tmp).polygon([(float(x), float(y)) for x, y in poly], fill=1)
        inside = {"l_eye": (SCLERA, IRIS), "r_eye": (SCLERA, IRIS)}.get(region, (L[region],))
        app[np.asarray(tmp, dtype=bool) & np.isin(app, inside)] = app_id

    spec.drawn = set(cv.drawn)
    image = _paint(rng, spec, labels, app, lens_polys, iris_c)
    return image, labels, spec


def _paint(rng: np.random.Generator, spec: FaceSpec, labels: np.ndarray, app: np.ndarray,
           lens_polys: list[np.ndarray], iris_c: np.ndarray) -> Image.Image:
    size = spec.size
    skin = _jitter(rng, _pick(rng, SKIN_TONES), 0.08)
    hair = _jitter(rng, _pick(rng, HAIR_COLOURS, HAIR_WEIGHTS), 0.1)
    lips = skin * np.array([0.85, 0.55, 0.55]) if rng.random() < 0.6 else _pick(rng, LIPSTICK)
    colours = np.zeros((64, 3), dtype=np.float32)
    colours[L["skin"]] = skin
    colours[L["nose"]] = skin * rng.uniform(0.95, 1.05)
    colours[L["neck"]] = skin * rng.uniform(0.8, 0.92)
    colours[L["l_ear"]] = colours[L["r_ear"]] = skin * rng.uniform(0.88, 0.98)
    colours[L["l_brow"]] = colours[L["r_brow"]] = hair * 0.7 if rng.random() < 0.8 else hair * 0.4
    colours[L["u_lip"]] = lips
    colours[L["l_lip"]] = lips * 1.1
    colours[L["mouth"]] = (60, 15, 20)
    colours[L["hair"]] = hair
    colours[L["hat"]] = _random_colour(rng)
    colours[L["ear_r"]] = _pick(rng, METALS) if rng.random() < 0.7 else _random_colour(rng)
    colours[L["neck_l"]] = _pick(rng, METALS) if rng.random() < 0.7 else _random_colour(rng)
    cloth = _random_colour(rng) if rng.random() < 0.85 else _jitter(rng, skin, 0.2)
    colours[L["cloth"]] = cloth
    colours[L["l_eye"]] = colours[L["r_eye"]] = colours[SCLERA] = (240, 236, 230)
    colours[IRIS] = iris_c
    colours[PUPIL] = (15, 12, 12)
    colours[TEETH] = (245, 240, 225)
    colours[NOSTRIL] = skin * 0.45
    colours[FRAME] = (20, 20, 20) if rng.random() < 0.5 else _random_colour(rng)
    colours[OCCLUDER] = _jitter(rng, skin, 0.15) if rng.random() < 0.5 else _random_colour(rng)
    colours = np.clip(colours, 0, 255)

    img = colours[app]
    bg = _background(rng, size, skin, hair)
    img = np.where((app == 0)[..., None], bg, img)

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    # texture: hair streaks, cloth pattern
    ang = rng.uniform(0, math.pi)
    streak = 1 + 0.12 * np.sin((np.cos(ang) * xx + np.sin(ang) * yy) * size * rng.uniform(0.3, 0.8))
    img = np.where((app == L["hair"])[..., None], img * streak[..., None], img)
    if rng.random() < 0.35:
        period = rng.uniform(0.02, 0.08)
        stripe = (np.sin(yy * 2 * math.pi / period + xx * rng.uniform(-20, 20)) > 0)[..., None]
        img = np.where(((app == L["cloth"])[..., None]) & stripe, img * 0.6 + _random_colour(rng) * 0.4, img)
    # blush on the cheeks
    face_mask = app == L["skin"]
    if face_mask.any():
        ys, xs = np.nonzero(face_mask)
        cy, cx = ys.mean() / size, xs.mean() / size
        r = max(float(np.ptp(xs)), 1.0) / size
        for sgn in (-1, 1):
            d2 = ((xx - cx - sgn * r * 0.28) ** 2 + (yy - cy - r * 0.15) ** 2) / (r * 0.14) ** 2
            img = np.where(face_mask[..., None], img * (1 - 0.12 * np.exp(-d2)[..., None] * np.array([0, 1, 1])), img)
    # lenses: tint what shows through
    if lens_polys:
        tmp = Image.new("L", (size, size), 0)
        d = ImageDraw.Draw(tmp)
        for poly in lens_polys:
            d.polygon([(float(x), float(y)) for x, y in poly], fill=1)
        lens = (np.asarray(tmp, dtype=bool) & (app != FRAME) & (labels == L["eye_g"]))[..., None]
        tint = np.array([20, 20, 30], dtype=np.float32) if spec.glasses == "dark" else _random_colour(rng)
        k = 0.85 if spec.glasses == "dark" else rng.uniform(0.1, 0.3)
        glint = (np.sin((xx + yy) * size * 0.15) > 0.93)[..., None]
        img = np.where(lens, img * (1 - k) + tint * k, img)
        img = np.where(lens & glint, img * 0.5 + 127, img)

    # outlines (a stylised drawing), lighting, noise
    edge = np.zeros((size, size), dtype=bool)
    edge[1:, :] |= app[1:, :] != app[:-1, :]
    edge[:, 1:] |= app[:, 1:] != app[:, :-1]
    edge &= app != 0
    if size >= 192:
        edge = np.asarray(Image.fromarray(edge.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    img = np.where(edge[..., None], img * rng.uniform(0.55, 0.8), img)
    la = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0.05, 0.3) * ((xx - 0.5) * math.cos(la) + (yy - 0.5) * math.sin(la)) * 2
    img = img * light[..., None] * rng.uniform(0.8, 1.15)
    img = img + rng.normal(0, rng.uniform(1, 7), img.shape)
    pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return pic.filter(ImageFilter.GaussianBlur(radius=max(0.4, size / 640) * rng.uniform(0.6, 1.4)))


def render_face(seed: int, size: int = 512) -> tuple[Image.Image, np.ndarray]:
    """A stylised portrait and its exact ``(size, size)`` uint8 label map (ids < 19), deterministic per seed."""
    image, labels, _ = render_face_with_spec(seed, size)
    return image, labels


def check_request(out: Path, n: int, size: int, seed: int) -> None:
    """Refuse a run that can't finish (bad count, size or seed; a file at ``out``; not enough disk) before drawing."""
    if n < 1:
        raise UserError(f"-n must be at least 1 (got {n}).")
    if n > MAX_COUNT:
        raise UserError(f"-n must be at most {MAX_COUNT} (got {n}): write more faces in several runs with "
                        f"different --seed and --out.")
    if size < MIN_SIZE:
        raise UserError(f"--size must be at least {MIN_SIZE} (got {size}): smaller faces lose their eyes and lips.")
    if size > MAX_SIZE:
        raise UserError(f"--size must be at most {MAX_SIZE} (got {size}): drawing needs memory that grows with "
                        f"size² (~620 MB at {MAX_SIZE}); train at 512 and below.")
    if seed < 0:
        raise UserError(f"--seed must be 0 or more (got {seed}).")
    if seed + n - 1 > MAX_SEED:
        raise UserError(f"--seed {seed} with -n {n} runs past the last seed, {MAX_SEED} (face i uses seed + i): "
                        f"use --seed {MAX_SEED - (n - 1)} or less.")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder (it gets images/, masks/, faces.jsonl).")
    need = n * size * size * DISK_BYTES_PER_PIXEL
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need + DISK_MARGIN_BYTES > free:
        raise UserError(f"{n} faces of {size}×{size} px need about {need / 1e9:.1f} GB, but only "
                        f"{free / 1e9:.1f} GB is free at {probe}: lower -n or --size, or write elsewhere.")


def write_dataset(out: str | Path, n: int, size: int = 512, seed: int = 0, *, progress: bool = True) -> Path:
    """Write ``n`` faces (seeds ``seed`` … ``seed + n - 1``) as ``out/images/*.png`` + ``out/masks/*.png``.

    Also writes ``out/faces.jsonl``: one line per face with what was drawn (for inspection, not needed to train).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    check_request(out, n, size, seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in tqdm(range(n), desc="synthesising faces", unit="face", disable=not progress):
        s = seed + i
        image, labels, spec = render_face_with_spec(s, size)
        assert labels.max() < NUM_LABELS
        name = f"face_{s:06d}.png"
        save_image(image, out / "images" / name)
        save_image(Image.fromarray(labels, mode="L"), out / "masks" / name)
        lines.append(json.dumps({"file": name, **spec.to_json()}))
    atomic_write(out / "faces.jsonl", ("\n".join(lines) + "\n").encode())
    return out
