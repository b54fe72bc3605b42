"""Micro-benchmark of the VC regressors (issue 7 "Benchmarks"; models of paper Methods / DESIGN §5).

``bench_regressor`` builds one model on random windows and measures its size, training throughput (windows
per second over ``steps`` batches after one warm-up batch), inference latency per window (batch of
``batch``, after a warm-up call) and the process's peak resident memory. Not a test: the numbers depend on
the machine; ``make bench`` runs it.
"""

from __future__ import annotations

import time

from .bench_models import _peak_rss_mb


def bench_regressor(name: str, size: int = 64, filters: int = 16, batch: int = 8, steps: int = 5,
                    seed: int = 0) -> dict:
    """Parameters, training windows/s, inference ms per window and peak RSS (MB) for one regressor."""
    import keras
    import numpy as np

    from .models.regression import build_regression_model, regression_loss

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    y = rng.normal(8.0, 9.0, batch).astype(np.float32)
    model = build_regression_model(name, size, filters)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=regression_loss(name))
    model.train_on_batch(x, y)  # warm-up: graph tracing is not throughput
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    train_s = time.perf_counter() - start
    model.predict_on_batch(x)
    start = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(x)
    infer_s = time.perf_counter() - start
    return {"model": name, "size": size, "filters": filters, "batch": batch, "steps": steps,
            "backend": keras.backend.backend(), "parameters": int(model.count_params()),
            "train_windows_per_s": round(steps * batch / train_s, 2),
            "inference_ms_per_window": round(1000.0 * infer_s / (steps * batch), 3),
            "peak_rss_mb": round(_peak_rss_mb(), 1)}
