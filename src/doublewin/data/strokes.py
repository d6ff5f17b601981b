"""``strokes``: handwritten-style digits drawn as pen strokes, in the format of scikit-learn's
``digits``, at any size.

Each digit class has one to three skeletons (a ``1`` with or without its flag and foot, an
open or closed ``4``, a ``7`` with or without its bar, …): strokes through a few control
points in a unit box. Every image is one skeleton of its class written once: each control
point moved at random (the writer's hand), the whole digit slanted, rotated, stretched and
shifted, the strokes traced as Catmull-Rom curves with a pen of random width, a smooth random
displacement field over the page, a stray dot or flipped pixel now and then; the 32×32
bitmap is then counted in 4×4 blocks into 8×8 grey levels 0–16, the preprocessing of the UCI
optical digits that ``digits`` comes from. So ``chars`` (printed glyphs) → ``strokes``
(drawn digits) is printed-to-handwritten transfer with as many independent test images as a
verdict needs, where ``digits`` has 539.

The images are a function of the seed alone (vectorised torch work, no files).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FRAME = 32  # bitmap side before block counting
BLOCK = 4
SAMPLES = 24  # points traced per stroke segment between two control points

Stroke = tuple[tuple[float, float], ...]
# Skeletons in a box x ∈ [-0.6, 0.6] (right), y ∈ [-1, 1] (down); each class a list of
# variants, each variant a tuple of strokes through control points.
SKELETONS: tuple[tuple[tuple[Stroke, ...], ...], ...] = (
    (  # 0
        (
            (
                (0.0, -0.95),
                (-0.45, -0.7),
                (-0.55, 0.0),
                (-0.4, 0.75),
                (0.0, 0.95),
                (0.4, 0.75),
                (0.55, 0.0),
                (0.45, -0.7),
                (0.0, -0.95),
            ),
        ),
    ),
    (  # 1
        (((0.05, -0.95), (0.0, 0.0), (-0.05, 0.95)),),
        (((-0.35, -0.55), (0.08, -0.95)), ((0.08, -0.95), (0.02, 0.0), (-0.02, 0.95))),
        (
            ((-0.35, -0.55), (0.08, -0.95)),
            ((0.08, -0.95), (0.02, 0.0), (-0.02, 0.92)),
            ((-0.35, 0.92), (0.35, 0.92)),
        ),
    ),
    (  # 2
        (
            (
                (-0.5, -0.55),
                (-0.1, -0.92),
                (0.4, -0.75),
                (0.4, -0.2),
                (-0.1, 0.4),
                (-0.55, 0.9),
                (0.0, 0.88),
                (0.55, 0.9),
            ),
        ),
        (
            (
                (-0.5, -0.6),
                (0.0, -0.95),
                (0.5, -0.55),
                (0.2, 0.1),
                (-0.55, 0.9),
                (-0.3, 0.55),
                (-0.1, 0.8),
                (0.55, 0.9),
            ),
        ),
    ),
    (  # 3
        (
            ((-0.5, -0.75), (0.0, -0.97), (0.45, -0.6), (0.05, -0.08)),
            ((0.05, -0.08), (0.55, 0.35), (0.15, 0.95), (-0.5, 0.75)),
        ),
        (((-0.5, -0.9), (0.5, -0.9), (0.0, -0.15), (0.5, 0.3), (0.2, 0.92), (-0.5, 0.75)),),
    ),
    (  # 4
        (((0.25, -0.95), (-0.55, 0.35), (0.6, 0.35)), ((0.3, -0.5), (0.3, 0.95))),
        (((-0.4, -0.95), (-0.48, 0.3), (0.6, 0.3)), ((0.35, -0.95), (0.35, 0.95))),
    ),
    (  # 5
        (
            ((0.55, -0.9), (-0.4, -0.9)),
            ((-0.4, -0.9), (-0.5, -0.12), (0.1, -0.25), (0.55, 0.25), (0.3, 0.85), (-0.5, 0.75)),
        ),
        (
            (
                (0.55, -0.92),
                (-0.35, -0.9),
                (-0.45, -0.1),
                (0.15, -0.22),
                (0.55, 0.3),
                (0.2, 0.9),
                (-0.5, 0.7),
            ),
        ),
    ),
    (  # 6
        (
            (
                (0.45, -0.9),
                (-0.15, -0.45),
                (-0.5, 0.3),
                (-0.25, 0.9),
                (0.35, 0.8),
                (0.45, 0.25),
                (0.0, 0.0),
                (-0.48, 0.35),
            ),
        ),
    ),
    (  # 7
        (((-0.55, -0.88), (0.55, -0.88), (-0.1, 0.95)),),
        (((-0.55, -0.88), (0.55, -0.88), (-0.1, 0.95)), ((-0.3, 0.05), (0.35, 0.05))),
    ),
    (  # 8
        (
            (
                (0.0, -0.05),
                (0.4, -0.45),
                (0.0, -0.95),
                (-0.4, -0.45),
                (0.0, -0.05),
                (0.5, 0.45),
                (0.0, 0.95),
                (-0.5, 0.45),
                (0.0, -0.05),
            ),
        ),
    ),
    (  # 9
        (
            ((0.45, -0.6), (0.0, -0.95), (-0.45, -0.55), (-0.1, -0.1), (0.45, -0.5)),
            ((0.45, -0.6), (0.38, 0.3), (0.1, 0.95)),
        ),
        (
            ((0.45, -0.6), (0.0, -0.95), (-0.45, -0.55), (-0.1, -0.1), (0.45, -0.5)),
            ((0.45, -0.6), (0.45, 0.95)),
        ),
    ),
)
NUM_CLASSES = len(SKELETONS)


def _variants() -> tuple[list[torch.Tensor], list[int]]:
    """Every skeleton as a padded tensor of traced points' control polygons, and its class."""
    polylines, classes = [], []
    for cls, variants in enumerate(SKELETONS):
        for strokes in variants:
            polylines.append([torch.tensor(s, dtype=torch.float32) for s in strokes])
            classes.append(cls)
    return polylines, classes


def _catmull_rom(points: torch.Tensor) -> torch.Tensor:
    """Points along the centripetal-free (uniform) Catmull-Rom curve through ``points``
    ([n, k, 2], k ≥ 2 control points): [n, (k − 1) × SAMPLES + 1, 2]."""
    first = 2 * points[:, :1] - points[:, 1:2]
    last = 2 * points[:, -1:] - points[:, -2:-1]
    p = torch.cat([first, points, last], dim=1)
    t = torch.linspace(0, 1, SAMPLES + 1)[:-1].view(1, 1, -1, 1)
    p0, p1, p2, p3 = (p[:, i : i + p.shape[1] - 3].unsqueeze(2) for i in range(4))
    curve = 0.5 * (
        2 * p1
        + (p2 - p0) * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
        + (3 * p1 - p0 - 3 * p2 + p3) * t**3
    )
    curve = curve.reshape(points.shape[0], -1, 2)
    return torch.cat([curve, points[:, -1:]], dim=1)


def render_strokes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (uint8 [n, 3, 8, 8], 17 grey levels like ``digits``) and their labels,
    balanced over the ten classes, deterministic from ``seed``."""
    g = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    skeletons, classes = _variants()
    labels = (torch.arange(n) % NUM_CLASSES)[torch.randperm(n, generator=g)]
    by_class = [[i for i, c in enumerate(classes) if c == k] for k in range(NUM_CLASSES)]
    pick = torch.rand(n, generator=g)
    variant = [
        by_class[c][int(p * len(by_class[c]))]
        for c, p in zip(labels.tolist(), pick.tolist(), strict=True)
    ]
    # The writer's digit-level geometry: slant, rotation, width and height, position.
    slant = uniform(-0.45, 0.25, n)  # most hands lean right (negative shear of x with y)
    angle = uniform(-0.15, 0.15, n)
    sx, sy = uniform(0.65, 1.15, n), uniform(0.8, 1.1, n)
    shift = uniform(-0.12, 0.12, n, 2)
    jitter = uniform(0.06, 0.16, n)  # how unsteady the hand is
    pen = uniform(0.1, 0.2, n)  # pen radius in box units (1 unit ≈ 13 px of the frame)
    parts = []
    for index in range(len(skeletons)):
        rows = torch.tensor([i for i, v in enumerate(variant) if v == index], dtype=torch.long)
        if rows.numel() == 0:
            continue
        curves = []
        for stroke in skeletons[index]:
            points = stroke.expand(rows.numel(), -1, -1).clone()
            points += torch.randn(points.shape, generator=g) * jitter[rows].view(-1, 1, 1)
            curves.append(_catmull_rom(points))
        parts.append((rows, torch.cat(curves, dim=1)))
    longest = max(c.shape[1] for _, c in parts)
    traces = torch.full((n, longest, 2), float("nan"))
    for rows, curve in parts:
        traces[rows, : curve.shape[1]] = curve
    x, y = traces[..., 0], traces[..., 1]
    x = (x + slant.view(-1, 1) * y) * sx.view(-1, 1)
    y = y * sy.view(-1, 1)
    cos, sin = torch.cos(angle).view(-1, 1), torch.sin(angle).view(-1, 1)
    x, y = x * cos - y * sin + shift[:, :1], x * sin + y * cos + shift[:, 1:]
    images = _draw(torch.stack([x, y], dim=-1), pen, g)
    return images, labels


def _draw(traces: torch.Tensor, pen: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Bitmaps of the traced points (NaN = no point) drawn with pen radius ``pen``, warped by a
    smooth random field, block-counted to 8×8: uint8 [n, 3, 8, 8]."""
    n = traces.shape[0]
    scale = FRAME / 2.4  # the box's height 2 maps to 26.7 of the 32 pixels
    coords = (torch.arange(FRAME, dtype=torch.float32) + 0.5 - FRAME / 2) / scale
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")
    # A smooth displacement field (elastic distortion): 4×4 random offsets, upsampled.
    field = F.interpolate(
        torch.randn(n, 2, 4, 4, generator=g) * 0.1, size=FRAME, mode="bicubic", align_corners=False
    )
    px = gx.reshape(1, -1) + field[:, 0].reshape(n, -1)
    py = gy.reshape(1, -1) + field[:, 1].reshape(n, -1)
    bitmap = torch.zeros(n, FRAME * FRAME, dtype=torch.bool)
    for start in range(0, n, 256):
        sl = slice(start, start + 256)
        dx = px[sl].unsqueeze(2) - traces[sl, :, 0].unsqueeze(1)
        dy = py[sl].unsqueeze(2) - traces[sl, :, 1].unsqueeze(1)
        dist = torch.nan_to_num(dx * dx + dy * dy, nan=math.inf).amin(dim=2)
        bitmap[sl] = dist < pen[sl].view(-1, 1) ** 2
    bitmap = bitmap.view(n, 1, FRAME, FRAME)
    noise = torch.rand(n, 1, FRAME, FRAME, generator=g) < 0.003
    bitmap = bitmap ^ noise
    counts = F.avg_pool2d(bitmap.float(), BLOCK) * BLOCK * BLOCK  # 0 … 16 per block
    return (counts * (255.0 / 16.0)).round().to(torch.uint8).repeat(1, 3, 1, 1)
