"""``chars``: printed letters and digits, rendered from the fonts matplotlib ships, in the
format of scikit-learn's handwritten ``digits``.

The 47 classes are EMNIST-balanced's (Cohen et al. 2017): the ten digits, the 26 capitals,
and the 11 lower-case letters that do not look like their capital (a b d e f g h n q r t); a
merged class (C, K, O, …) shows either case. Each image is one glyph of one of 21 faces
(DejaVu Sans, Sans Mono and Serif, STIX and Computer Modern, in regular, bold and slanted
styles), scaled to fill the frame, rotated, sheared, shifted and stretched at random, with a
random stroke width, occasional clutter and pixel noise, drawn as a 32×32 binary bitmap and
counted in 4×4 blocks into 8×8 grey levels 0–16: the preprocessing of the UCI optical
digits that scikit-learn ships. So the source task (printed characters) and the downstream
task (handwritten digits) share their pixel format, as ImageNet and upsampled CIFAR do, and
differ in what matters: printed vs handwritten strokes, 47 vs 10 classes.

The fonts are read from matplotlib's installation and only rasterised here; nothing is
shipped or downloaded. The images are a function of the seed alone.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F

from doublewin.core.errors import UserError

# Each class and the characters that draw it (merged classes: both cases).
CLASS_CHARS: tuple[str, ...] = (
    *"0123456789",
    *(c + c.lower() if c in "CIJKLMOPSUVWXYZ" else c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    *"abdefghnqrt",
)
NUM_CLASSES = len(CLASS_CHARS)  # 47
FACES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
    "cmti10.ttf",
    "cmb10.ttf",
)
GLYPH = 64  # side of the canvas each glyph is normalised into
GLYPH_BOX = 56  # the glyph's larger side on that canvas
FRAME = 32  # the bitmap side before 4×4 block counting (as in the UCI digits)
BLOCK = 4


@functools.cache
def glyph_bank() -> tuple[torch.Tensor, list[list[int]]]:
    """Every (face, character) glyph, anti-aliased, its larger side scaled to ``GLYPH_BOX`` and
    centred on a ``GLYPH``×``GLYPH`` canvas: a float tensor [glyphs, 1, GLYPH, GLYPH] in
    [0, 1], and per class the indices of its glyphs."""
    # deferred: FT2Font is matplotlib's compiled font rasteriser; only this set needs it
    from matplotlib import ft2font

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    chars = sorted({ch for group in CLASS_CHARS for ch in group})
    glyphs: list[torch.Tensor] = []
    index: dict[str, list[int]] = {ch: [] for ch in chars}
    for face in FACES:
        path = folder / face
        if not path.is_file():
            raise UserError(
                f"{path}: a font the embedded 'chars' set is drawn from is missing; "
                "reinstall matplotlib (pip install --force-reinstall matplotlib)"
            )
        font = ft2font.FT2Font(str(path))
        font.set_size(96, 72)  # 96 px glyphs: downscaled below, so outlines stay smooth
        for ch in chars:
            font.set_text(ch, 0.0)
            font.draw_glyphs_to_bitmap(antialiased=True)
            ink = np.asarray(font.get_image(), dtype=np.float32) / 255.0
            rows, cols = np.nonzero(ink > 0.5)
            if rows.size == 0:
                continue  # the face has no such glyph
            crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            index[ch].append(len(glyphs))
            glyphs.append(_normalised(torch.from_numpy(crop.copy())))
    by_class = [sorted(i for ch in group for i in index[ch]) for group in CLASS_CHARS]
    return torch.stack(glyphs).unsqueeze(1), by_class


def _normalised(crop: torch.Tensor) -> torch.Tensor:
    """``crop`` (the glyph's ink box) scaled so its larger side is GLYPH_BOX, centred."""
    h, w = crop.shape
    scale = GLYPH_BOX / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    resized = F.interpolate(crop[None, None], size=size, mode="area")[0, 0]
    canvas = torch.zeros(GLYPH, GLYPH)
    top, left = (GLYPH - size[0]) // 2, (GLYPH - size[1]) // 2
    canvas[top : top + size[0], left : left + size[1]] = resized
    return canvas


def render_chars(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (uint8 [n, 3, 8, 8], 17 grey levels like ``digits``) and their labels,
    balanced over the classes, deterministic from ``seed``."""
    bank, by_class = glyph_bank()
    g = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    labels = (torch.arange(n) % NUM_CLASSES)[torch.randperm(n, generator=g)]
    pick = torch.rand(n, generator=g)
    glyph = torch.tensor(
        [
            by_class[c][int(p * len(by_class[c]))]
            for c, p in zip(labels.tolist(), pick.tolist(), strict=True)
        ]
    )
    # Geometry, output pixels → glyph canvas: the glyph's larger side fills 26–32 of the 32
    # pixels; ±10° rotation, ±0.25 shear, 0.8–1.2 width stretch, ±2.5 px shift.
    side = uniform(26, 32, n)
    angle = uniform(-math.pi / 18, math.pi / 18, n)
    shear = uniform(-0.25, 0.25, n)
    stretch = uniform(0.8, 1.2, n)
    shift = uniform(-2.5, 2.5, n, 2) / (FRAME / 2)
    k = (GLYPH_BOX / GLYPH) * FRAME / side
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = k * cos / stretch
    theta[:, 0, 1] = k * (cos * shear - sin) / stretch
    theta[:, 1, 0] = k * sin
    theta[:, 1, 1] = k * (sin * shear + cos)
    theta[:, :, 2] = -(theta[:, :, :2] @ shift.unsqueeze(2)).squeeze(2)
    grid = F.affine_grid(theta, [n, 1, FRAME, FRAME], align_corners=False)
    ink = F.grid_sample(bank[glyph], grid, mode="bilinear", align_corners=False)
    # Stroke width: the binarisation threshold and 0–2 dilations (handwriting is thicker).
    bitmap = ink > uniform(0.3, 0.7, n, 1, 1, 1)
    dilations = torch.multinomial(torch.tensor([0.5, 0.4, 0.1]), n, True, generator=g)
    for step in (1, 2):
        grown = F.max_pool2d(bitmap.float(), 3, 1, 1) > 0
        bitmap = torch.where((dilations >= step).view(n, 1, 1, 1), grown, bitmap)
    noise = torch.rand(n, 1, FRAME, FRAME, generator=g) < 0.004  # flipped pixels
    bitmap = (bitmap | _clutter(n, g)) ^ noise
    counts = F.avg_pool2d(bitmap.float(), BLOCK) * BLOCK * BLOCK  # 0 … 16 per block
    images = (counts * (255.0 / 16.0)).round().to(torch.uint8).repeat(1, 3, 1, 1)
    return images, labels


def _clutter(n: int, g: torch.Generator) -> torch.Tensor:
    """A short stray stroke on a quarter of the images: [n, 1, FRAME, FRAME] bool."""
    coords = torch.arange(FRAME, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    start = torch.rand(n, 2, generator=g) * FRAME
    angle = torch.rand(n, generator=g) * math.pi
    length = 3 + torch.rand(n, generator=g) * 7
    dx, dy = torch.cos(angle).view(n, 1, 1), torch.sin(angle).view(n, 1, 1)
    rx, ry = x - start[:, 0].view(n, 1, 1), y - start[:, 1].view(n, 1, 1)
    along = rx * dx + ry * dy
    across = (rx * dy - ry * dx).abs()
    stroke = (along >= 0) & (along <= length.view(n, 1, 1)) & (across < 1.2)
    on = (torch.rand(n, generator=g) < 0.25).view(n, 1, 1)
    return (stroke & on).unsqueeze(1)
