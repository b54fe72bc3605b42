"""Model benchmarks for the segmentation networks (issue 5 "Benchmarks"; paper Methods, segmentation model).

``bench_segmentation`` reports, for one architecture at one image size: parameter count, training throughput
(images/s, after a warm-up step that pays for tracing), inference latency per image, and the process's peak
resident memory. These are measurements, not tests; ``vcmeasure.benchmark`` (``make bench``) stamps them with
the machine and versions. Random data: speed does not depend on image content.
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def bench_segmentation(arch: str, size: int = 256, base_filters: int = 16, batch: int = 5, steps: int = 5,
                       depth: int = 4, seed: int = 0) -> dict:
    """Params, train images/s, inference ms/image and peak RSS of ``arch`` at ``size`` px (``steps`` timed)."""
    from .models.segmentation import build_segmentation_model, compile_segmentation_model
    from .seeding import seed_everything

    seed_everything(seed)
    model = compile_segmentation_model(build_segmentation_model(arch, size, base_filters, depth))
    rng = np.random.default_rng(seed)
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    y = (rng.random((batch, size, size, 1)) > 0.7).astype(np.float32)

    model.train_on_batch(x, y)  # warm-up: graph tracing is not throughput
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    train_s = time.perf_counter() - t0

    model.predict_on_batch(x[:1])
    t0 = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(x[:1])
    infer_s = time.perf_counter() - t0

    import keras

    return {
        "arch": arch,
        "size": size,
        "base_filters": base_filters,
        "depth": depth,
        "batch": batch,
        "steps": steps,
        "params": int(model.count_params()),
        "train_images_per_s": round(batch * steps / train_s, 3),
        "inference_ms_per_image": round(1000 * infer_s / steps, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "backend": keras.backend.backend(),
    }
