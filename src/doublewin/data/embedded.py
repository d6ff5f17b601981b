"""The embedded datasets: no files needed, deterministic from a seed, cached.

- ``shapes``: ten shape classes (disk, square, triangle, plus, ring, hollow
  square, half-disk, diamond, bar, two dots) drawn at random position, scale, rotation and
  colour over textured backgrounds (colour gradients, stripes, noise) with distractor
  strokes, rendered 2× supersampled and averaged down to 32 px. 10,000 / 2,000 / 2,000.
- ``digits``: scikit-learn's 8×8 handwritten digits (1,797 images, 17 grey levels) as RGB,
  stratified 60 / 10 / 30 split.
- ``chars`` (the demo's source task): printed letters and digits, 47 classes in 21 faces, in
  the 8×8 format of ``digits`` (printed.py). 20,000 / 2,000 / 2,000.
- ``textures``: ten texture classes (gratings at four orientations, checkerboard, dot grid,
  concentric rings, white noise, smooth blobs, plaid) with random frequency, phase, colours
  and contrast, 32 px. 1,500 / 250 / 500.
Everything is vectorised torch work seeded per split, so the bytes are the same on every
machine (``chars`` also rasterises fonts with matplotlib's FreeType, so its cache is keyed by
the matplotlib version too); results are cached under ``$DOUBLEWIN_CACHE`` (default
``~/.cache/doublewin``).
"""

from __future__ import annotations

import math

import matplotlib
import torch

from doublewin.data.cache import cached_tensors
from doublewin.data.printed import render_chars
from doublewin.data.splits import stratified_holdout
from doublewin.data.strokes import render_strokes

SIZE = 32
CACHE_VERSION = "6"  # bump when a generator changes, so stale caches are not read


# ---------------------------------------------------------------- shapes (source task)


def _grid(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return x.expand(n, size, size), y.expand(n, size, size)


def _shape_mask(cls: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Membership of each pixel in the shape of its image's class; u, v in shape units."""
    r = torch.sqrt(u * u + v * v)
    a, b = u.abs(), v.abs()
    masks = torch.stack(
        [
            r < 1.0,  # disk
            torch.maximum(a, b) < 0.8,  # square
            (v > -0.7) & (v < 0.9 - 1.6 * a),  # triangle
            ((a < 0.28) & (b < 1.0)) | ((b < 0.28) & (a < 1.0)),  # plus
            (r > 0.55) & (r < 1.0),  # ring
            (torch.maximum(a, b) < 0.9) & (torch.maximum(a, b) > 0.55),  # hollow square
            (r < 1.0) & (v > 0.0),  # half-disk
            a + b < 1.0,  # diamond
            (a < 1.0) & (b < 0.3),  # bar
            ((u - 0.5) ** 2 + v * v < 0.16) | ((u + 0.5) ** 2 + v * v < 0.16),  # two dots
        ]
    )
    index = cls.view(1, -1, 1, 1).expand(1, *u.shape)
    return masks.gather(0, index).squeeze(0)


def render_shapes(n: int, seed: int, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` shapes images (uint8 [n,3,size,size]) and labels, deterministic from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    labels = labels[torch.randperm(n, generator=g)]
    hi = 2 * size  # 2× supersampling for anti-aliased edges
    x, y = _grid(n, hi)

    def uniform(lo: float, up: float, *shape: int) -> torch.Tensor:
        return lo + (up - lo) * torch.rand(*shape, generator=g)

    # Background: two-colour gradient at a random angle, optional stripes, pixel noise.
    c0, c1 = uniform(0, 1, n, 3, 1, 1), uniform(0, 1, n, 3, 1, 1)
    angle = uniform(0, 2 * math.pi, n, 1, 1)
    t = ((x * torch.cos(angle) + y * torch.sin(angle)) * 0.5 + 0.5).unsqueeze(1)
    background = c0 * (1 - t) + c1 * t
    stripes = (
        torch.sin(
            (x * torch.cos(angle + 1) + y * torch.sin(angle + 1)) * uniform(4, 14, n, 1, 1)
            + uniform(0, 6.3, n, 1, 1)
        )
        > 0
    )
    stripe_on = torch.rand(n, 1, 1, generator=g) < 0.25
    background = background + 0.15 * (stripes & stripe_on).unsqueeze(1).float()
    # Distractor strokes: a thin line at a random place and angle.
    lx, ly, la = uniform(-1, 1, n, 1, 1), uniform(-1, 1, n, 1, 1), uniform(0, 3.2, n, 1, 1)
    dist = ((x - lx) * torch.sin(la) - (y - ly) * torch.cos(la)).abs()
    stroke = (dist < 0.05).unsqueeze(1) & (torch.rand(n, 1, 1, 1, generator=g) < 0.35)
    stroke_colour = uniform(0, 1, n, 3, 1, 1)
    # The shape: position, scale, rotation (±25°, so rotated classes stay distinct), colour
    # that contrasts with the local background.
    cx, cy = uniform(-0.25, 0.25, n, 1, 1), uniform(-0.25, 0.25, n, 1, 1)
    scale = uniform(0.5, 0.75, n, 1, 1)
    rot = uniform(-0.44, 0.44, n, 1, 1)
    xr, yr = (x - cx) / scale, (y - cy) / scale
    u = xr * torch.cos(rot) + yr * torch.sin(rot)
    v = -xr * torch.sin(rot) + yr * torch.cos(rot)
    inside = _shape_mask(labels, u, v).unsqueeze(1)
    fg = (1.0 - (c0 + c1) / 2 + uniform(-0.15, 0.15, n, 3, 1, 1)).clamp(0, 1)
    image = torch.where(stroke, stroke_colour.expand_as(background), background)
    image = torch.where(inside, fg.expand_as(image), image)
    image = torch.nn.functional.avg_pool2d(image, 2)
    image = image + 0.04 * torch.randn(image.shape, generator=g)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8), labels


def build_shapes(seed: int = 0) -> dict[str, torch.Tensor]:
    out = {}
    for offset, (split, n) in enumerate((("train", 10000), ("val", 2000), ("test", 2000))):
        chunks = [render_shapes(1000, seed * 1000 + offset * 100 + i) for i in range(n // 1000)]
        out[f"{split}_images"] = torch.cat([c[0] for c in chunks])
        out[f"{split}_labels"] = torch.cat([c[1] for c in chunks])
    return out


# ---------------------------------------------------------------- digits (sklearn)


def build_digits() -> dict[str, torch.Tensor]:
    # deferred: scikit-learn loads in about 1 s; only the digits set needs it (once, cached)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)  # [N,8,8] in 0..16
    images = (images * (255.0 / 16.0)).round().to(torch.uint8)
    images = images.unsqueeze(1).repeat(1, 3, 1, 1)
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    rest, test = stratified_holdout(labels, round(0.3 * len(labels)), seed=0)
    train_rel, val_rel = stratified_holdout(labels[rest], round(0.1 * len(labels)), seed=1)
    train, val = rest[train_rel], rest[val_rel]
    return {
        "train_images": images[train],
        "train_labels": labels[train],
        "val_images": images[val],
        "val_labels": labels[val],
        "test_images": images[test],
        "test_labels": labels[test],
    }


# ---------------------------------------------------------------- textures (downstream)


def render_textures(n: int, seed: int, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]
    x, y = _grid(n, size)

    def uniform(lo: float, up: float, *shape: int) -> torch.Tensor:
        return lo + (up - lo) * torch.rand(*shape, generator=g)

    # 1.5–3.5 cycles per image: the classes survive downsampling to 8 px (Nyquist: 4).
    freq = uniform(1.5, 3.5, n, 1, 1)
    phase = uniform(0, 2 * math.pi, n, 1, 1)
    jitter = uniform(-0.15, 0.15, n, 1, 1)

    def grating(theta: torch.Tensor) -> torch.Tensor:
        return torch.sin(freq * (x * torch.cos(theta) + y * torch.sin(theta)) * math.pi + phase)

    noise = torch.rand(n, size, size, generator=g) * 2 - 1
    smooth = torch.nn.functional.avg_pool2d(
        torch.nn.functional.interpolate(
            torch.rand(n, 1, 6, 6, generator=g) * 2 - 1,
            size=size,
            mode="bicubic",
            align_corners=False,
        ),
        3,
        1,
        1,
    ).squeeze(1)
    r = torch.sqrt(x * x + y * y)
    patterns = torch.stack(
        [
            grating(jitter),  # horizontal-ish grating
            grating(math.pi / 2 + jitter),  # vertical
            grating(math.pi / 4 + jitter),  # diagonal
            grating(3 * math.pi / 4 + jitter),  # anti-diagonal
            torch.sign(torch.sin(freq * x * math.pi + phase) * torch.sin(freq * y * math.pi)),
            (
                (torch.sin(freq * x * math.pi + phase) * torch.sin(freq * y * math.pi + phase))
                > 0.6
            ).float()
            * 2
            - 1,  # dot grid
            torch.sin(freq * r * math.pi * 1.5 + phase),  # rings
            noise,  # white noise
            smooth / smooth.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-3),  # blobs
            (grating(jitter) + grating(math.pi / 2 + jitter)) / 2,  # plaid
        ]
    )
    pattern = patterns.gather(0, labels.view(1, -1, 1, 1).expand(1, n, size, size)).squeeze(0)
    c0, c1 = torch.rand(n, 3, 1, 1, generator=g), torch.rand(n, 3, 1, 1, generator=g)
    contrast = uniform(0.5, 1.0, n, 1, 1, 1)
    t = (pattern.unsqueeze(1) * contrast + 1) / 2
    image = c0 * (1 - t) + c1 * t + 0.03 * torch.randn(n, 3, size, size, generator=g)
    return (image.clamp(0, 1) * 255).round().to(torch.uint8), labels


def build_textures(seed: int = 0) -> dict[str, torch.Tensor]:
    out = {}
    for offset, (split, n) in enumerate((("train", 1500), ("val", 250), ("test", 500))):
        images, labels = render_textures(n, seed * 1000 + 500 + offset)
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    return out


# ---------------------------------------------------------------- chars (source task)


def build_chars(seed: int = 0) -> dict[str, torch.Tensor]:
    out = {}
    for offset, (split, n) in enumerate((("train", 20000), ("val", 2000), ("test", 2000))):
        images, labels = render_chars(n, seed * 1000 + 700 + offset)
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    return out


# ---------------------------------------------------------------- strokes (downstream)

STROKES_SPLITS = (("train", 3000), ("val", 500), ("test", 2000))


def build_strokes(seed: int = 0) -> dict[str, torch.Tensor]:
    out = {}
    for offset, (split, n) in enumerate(STROKES_SPLITS):
        images, labels = render_strokes(n, seed * 1000 + 900 + offset)
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    return out


# strokes draws as many test images as a verdict needs: beyond the first 2,000, in chunks of
# 2,000 from seeds of their own (the first images stay the same whatever the size).
STROKES_TEST_CHUNK = 2000


def strokes_test_chunk(index: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Test images 2,000·(index+1) … 2,000·(index+2) − 1 of ``strokes`` (index 0 follows the
    published 2,000)."""
    images, labels = render_strokes(STROKES_TEST_CHUNK, seed * 1000 + 950 + index)
    return {"test_images": images, "test_labels": labels}


def extra_test_images(name: str, count: int) -> dict[str, torch.Tensor] | None:
    """``count`` more test images of ``name`` after its own, for a dataset that renders them
    (strokes); None for the others."""
    if name != "strokes" or count <= 0:
        return None
    chunks = [
        cached_tensors(
            f"strokes-test{index}-v{CACHE_VERSION}", lambda index=index: strokes_test_chunk(index)
        )
        for index in range(-(-count // STROKES_TEST_CHUNK))
    ]
    return {
        key: torch.cat([chunk[key] for chunk in chunks])[:count]
        for key in ("test_images", "test_labels")
    }


BUILDERS = {
    "shapes": build_shapes,
    "digits": build_digits,
    "textures": build_textures,
    "chars": build_chars,
    "strokes": build_strokes,
}


def load_embedded(name: str) -> dict[str, torch.Tensor]:
    """{split}_images / {split}_labels tensors of an embedded dataset (cached)."""
    key = f"{name}-v{CACHE_VERSION}"
    if name == "chars":
        key += f"-mpl{matplotlib.__version__}"
    return cached_tensors(key, BUILDERS[name])
