"""Benchmarks of the preprocessing step and the loaders (issue 4; DESIGN §5 Preprocessing). Not tests.

- :func:`bench_preprocess`: images/s of :func:`vcmeasure.preprocess.preprocess_image` (OpenCV CLAHE) against
  the same steps with scikit-image's ``equalize_adapthist`` in place of OpenCV's CLAHE, and their ratio.
- :func:`bench_loader_overhead`: time to build one augmented :class:`~vcmeasure.loaders.SegmentationDataset`
  batch as a share of one training step of a small U-Net (target under 5 %). The share is measured with the
  loader and the step run one after the other, the worst case: with ``workers > 1`` Keras overlaps them.

Figures are medians over repeats, measured side by side in one process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from .preprocess import Transform, preprocess_image, to_uint8_full_range


def _radiograph_like(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth low-contrast 16-bit image with noise: the kind of input CLAHE is meant for."""
    small = rng.normal(size=(max(2, height // 64), max(2, width // 64)))
    base = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    img = 20000 + 3000 * base + rng.normal(0, 300, (height, width))
    return np.clip(img, 0, 65535).astype(np.uint16)


def _skimage_preprocess(image: np.ndarray, anterior_side: str, size: int, clip_limit: float, tile_grid: int):
    """The same steps as :func:`preprocess_image` with ``skimage.exposure.equalize_adapthist`` as the CLAHE."""
    from skimage.exposure import equalize_adapthist

    tf = Transform.create(image.shape[1], image.shape[0], size, anterior_side == "right")
    img8 = to_uint8_full_range(image)
    kernel = (max(1, img8.shape[0] // tile_grid), max(1, img8.shape[1] // tile_grid))
    # OpenCV's limit is relative to a uniform 256-bin histogram; scikit-image's is a fraction of the tile
    eq = equalize_adapthist(img8, kernel_size=kernel, clip_limit=clip_limit / 256.0, nbins=256)
    return tf.image_to_preprocessed(np.rint(eq * 255.0).astype(np.uint8)), tf


def _rate(fn, images, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for img in images:
            fn(img)
        times.append(time.perf_counter() - start)
    return len(images) / statistics.median(times)


def bench_preprocess(n: int = 8, size: int = 512, width: int = 1200, height: int = 1800, repeats: int = 3,
                     clip_limit: float = 2.0, tile_grid: int = 8, seed: int = 0) -> dict:
    """Images per second, OpenCV path vs. scikit-image CLAHE, on ``n`` synthetic ``width`` x ``height`` images."""
    rng = np.random.default_rng(seed)
    images = [_radiograph_like(rng, width, height) for _ in range(n)]

    def ours(img):  # anterior side right: the flip is part of the measured work
        return preprocess_image(img, "right", size, clip_limit, tile_grid)

    def theirs(img):
        return _skimage_preprocess(img, "right", size, clip_limit, tile_grid)

    ours(images[0])  # warm-up (first CLAHE call allocates)
    cv_rate = _rate(ours, images, repeats)
    sk_rate = _rate(theirs, images, repeats)
    return {"n": n, "size": size, "input": f"{width}x{height} uint16", "repeats": repeats,
            "opencv_images_per_s": round(cv_rate, 2), "skimage_images_per_s": round(sk_rate, 2),
            "speedup_opencv_over_skimage": round(cv_rate / sk_rate, 1)}


def bench_loader_overhead(n_images: int = 20, size: int = 128, batch_size: int = 5, base_filters: int = 16,
                          depth: int = 4, steps: int = 8, seed: int = 0) -> dict:
    """Median loader time per augmented batch as a share of (loader + one U-Net train step) on that batch."""
    import keras

    from .loaders import SegmentationDataset
    from .models.segmentation import build_segmentation_model, compile_segmentation_model

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        img_dir, mask_dir = Path(tmp, "images"), Path(tmp, "masks")
        img_dir.mkdir()
        mask_dir.mkdir()
        ids = [f"b{i:03d}" for i in range(n_images)]
        for image_id in ids:
            mask = np.zeros((size, size), np.uint8)
            for k in range(4):
                top = 8 + k * size // 4
                mask[top:top + size // 6, size // 4: 3 * size // 4] = k + 1
            img = np.clip(rng.normal(60, 20, (size, size)) + 120 * (mask > 0), 0, 255).astype(np.uint8)
            cv2.imwrite(str(img_dir / f"{image_id}.png"), img)
            cv2.imwrite(str(mask_dir / f"{image_id}.png"), mask)
        ds = SegmentationDataset(img_dir, mask_dir, ids, batch_size, augment=True, seed=seed, shuffle=True)
        keras.utils.set_random_seed(seed)
        model = compile_segmentation_model(build_segmentation_model("unet", size, base_filters, depth))
        x, y = ds[0]
        model.train_on_batch(x, y)  # warm-up: graph tracing
        load_t, step_t = [], []
        for i in range(steps):
            start = time.perf_counter()
            x, y = ds[i % len(ds)]
            load_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.train_on_batch(x, y)
            step_t.append(time.perf_counter() - start)
    load, step = statistics.median(load_t), statistics.median(step_t)
    return {"backend": keras.backend.backend(), "size": size, "batch_size": batch_size,
            "base_filters": base_filters, "depth": depth, "steps": steps,
            "loader_ms_per_batch": round(1000 * load, 2), "train_step_ms": round(1000 * step, 1),
            "loader_share": round(load / (load + step), 4), "target_share": 0.05}
