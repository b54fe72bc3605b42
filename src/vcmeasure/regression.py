"""Training and prediction of the VC regressors on three-body windows (paper Methods "Vertebral compression
measurement model based on CNN"; DESIGN §4 "Reference value", §5 "Models"; docs/ARCHITECTURE.md regression row).

- Training set: ``split == "train"`` windows with a finite reference (``value_reader``); negative VC is kept,
  as in the paper. Validation: ``split == "val"``; without one, a seeded 10 % of the training *subjects*.
  The best epoch is the one with the lowest validation MAE (VC points).
- Targets are standardised with the training mean and SD; the de-standardisation is the model's last layer
  (see :mod:`vcmeasure.models.regression`), so losses, metrics and predictions are in VC percent.
- Loss: MSE (the paper names none) — CARN adds its manifold term; optimiser Adam (the paper names none) with
  ``regression.learning_rate``; batch ``regression.batch_size``; ``regression.epochs`` epochs, resumable.
- Prediction: every window of the evaluation source, all splits, into ``predictions.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .io import write_csv
from .seeding import derive_seed

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["triplet_id", "image_id", "subject_id", "split", "model", "predicted", "reference",
                      "value_true", "fractured"]
INDEX_COLUMNS = ["triplet_id", "image_id", "subject_id", "split", "reference", "value_true", "fractured"]
VAL_FRACTION = 0.10


def load_windows(windows_path: str | Path, index_path: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Read ``windows.npz`` (x, triplet_id) and ``index.csv``; return x aligned with the index rows."""
    windows_path, index_path = Path(windows_path), Path(index_path)
    if not windows_path.is_file():
        raise InputError(f"{windows_path}: no such file")
    if not index_path.is_file():
        raise InputError(f"{index_path}: no such file")
    try:
        with np.load(windows_path, allow_pickle=False) as data:
            x, ids = np.asarray(data["x"], dtype=np.float32), np.asarray(data["triplet_id"]).astype(str)
    except (KeyError, ValueError, OSError) as err:
        raise InputError(f"{windows_path}: not a windows file with arrays 'x' and 'triplet_id' ({err})") from None
    index = pd.read_csv(index_path, dtype={"triplet_id": str, "image_id": str, "subject_id": str})
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise InputError(f"{index_path}: missing columns {', '.join(missing)}")
    if x.ndim != 4 or x.shape[-1] != 1 or (len(x) and x.shape[1] != x.shape[2]):
        raise InputError(f"{windows_path}: 'x' must have shape (n, S, S, 1), got {x.shape}")
    if len(ids) != len(x):
        raise InputError(f"{windows_path}: {len(x)} windows but {len(ids)} triplet ids")
    pos = {t: i for i, t in enumerate(ids)}
    absent = [t for t in index["triplet_id"] if t not in pos]
    if absent:
        raise InputError(f"{index_path}: triplet '{absent[0]}' has no window in {windows_path}")
    return x[[pos[t] for t in index["triplet_id"]]], index.reset_index(drop=True)


def split_rows(index: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of the training and validation windows (finite reference only).

    Without ``val`` rows, a seeded 10 % of the training subjects (at least one, if there are two or more)
    become validation, so no subject is on both sides.
    """
    ref = pd.to_numeric(index["reference"], errors="coerce").to_numpy(float)
    usable = np.isfinite(ref)
    split = index["split"].astype(str).to_numpy()
    train = np.flatnonzero(usable & (split == "train"))
    val = np.flatnonzero(usable & (split == "val"))
    if len(val) or len(train) < 2:
        return train, val
    subjects = np.unique(index["subject_id"].astype(str).to_numpy()[train])
    rng = np.random.default_rng(derive_seed(seed, "regression-val"))
    if len(subjects) >= 2:
        n_val = max(1, int(round(VAL_FRACTION * len(subjects))))
        held = set(rng.choice(subjects, size=n_val, replace=False))
        is_val = index["subject_id"].astype(str).iloc[train].isin(held).to_numpy()
    else:  # one subject: fall back to windows
        is_val = np.zeros(len(train), bool)
        is_val[rng.choice(len(train), size=max(1, int(round(VAL_FRACTION * len(train)))), replace=False)] = True
    return train[~is_val], train[is_val]


def _dataset(x, y, batch_size: int, shuffle: bool, seed: int):
    from .loaders import WindowDataset

    # no augmentation: the paper names none, and the windows are already normalised crops
    return WindowDataset(x, y, batch_size=batch_size, augment=False, seed=seed, shuffle=shuffle)


def plot_learning_curve(history: pd.DataFrame, path: str | Path, title: str) -> None:
    """Loss and MAE per epoch, training and validation, with the best epoch marked."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from .plotting import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "loss", "loss (VC²)"), (axes[1], "mae", "MAE (VC points)")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if f"{prefix}{key}" in history:
                ax.plot(history["epoch"], history[f"{prefix}{key}"], style, label=prefix.rstrip("_") or "train")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if "val_mae" in history and len(history):
        best = history.loc[history["val_mae"].idxmin()]
        axes[1].axvline(best["epoch"], color="grey", lw=0.8, label=f"best epoch {int(best['epoch'])}")
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def train(windows: str | Path, index: str | Path, model_out: str | Path, history_out: str | Path,
          curve_out: str | Path | None, *, model_name: str, filters: int = 64, batch_size: int = 8,
          epochs: int = 150, learning_rate: float = 0.01, seed: int = 0, checkpoint_dir: str | Path | None = None,
          callbacks: Sequence = (), verbose: int = 2, threads: int | None = None):
    """Train ``model_name`` on the training windows; write the best model, its history and learning curve.

    Resumable: rerunning after an interruption continues from the last completed epoch in ``checkpoint_dir``
    (default ``<model_out dir>/checkpoint``). Returns :class:`vcmeasure.training.FitResult`.
    """
    import keras

    from .models.regression import ManifoldRegularizedMSE, build_regression_model, regression_loss
    from .segmentation import limit_threads
    from .training import finalize, fit_resumable

    limit_threads(threads)
    x, idx = load_windows(windows, index)
    tr, va = split_rows(idx, seed)
    if len(tr) == 0:
        raise InputError(f"{windows}: no training windows (split 'train' with a finite reference in {index})")
    if len(va) == 0:
        raise InputError(f"{windows}: need at least two training windows to hold one out for validation")
    y = pd.to_numeric(idx["reference"], errors="coerce").to_numpy(np.float32)
    mean, std = float(np.mean(y[tr])), float(np.std(y[tr]))
    std = std if std > 1e-6 else 1.0
    size = int(x.shape[1])
    log.info("%s: %d train / %d val windows of %d px; target mean %.3f SD %.3f", model_name, len(tr), len(va),
             size, mean, std)

    def build():
        model = build_regression_model(model_name, size, filters, target_mean=mean, target_std=std)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=regression_loss(model_name),
                      metrics=[keras.metrics.MeanAbsoluteError(name="mae")])
        return model

    workdir = Path(checkpoint_dir) if checkpoint_dir else Path(model_out).parent / "checkpoint"
    settings = {"model": model_name, "filters": filters, "batch_size": batch_size, "epochs": epochs,
                "learning_rate": learning_rate, "size": size, "n_train": len(tr), "n_val": len(va),
                "target": [round(mean, 6), round(std, 6)]}
    result = fit_resumable(
        build, _dataset(x[tr], y[tr], batch_size, True, seed), _dataset(x[va], y[va], batch_size, False, seed),
        epochs=epochs, workdir=workdir, monitor="val_mae", mode="min", seed=seed, settings=settings,
        custom_objects={"ManifoldRegularizedMSE": ManifoldRegularizedMSE}, verbose=verbose, callbacks=callbacks)
    log.info("%s: best epoch %d, val MAE %.3f (resumed from epoch %d)", model_name, result.best_epoch,
             result.best_value, result.resumed_from)
    if curve_out:
        plot_learning_curve(result.history, curve_out, f"{model_name}: best epoch {result.best_epoch}")
    finalize(result, model_out, history_out, workdir)
    return result


def predict(windows: str | Path, index: str | Path, model_path: str | Path, out_csv: str | Path, *,
            model_name: str, batch_size: int = 64, threads: int | None = None) -> pd.DataFrame:
    """Predict VC for every window (all splits) and write ``predictions.csv`` (DESIGN / ARCHITECTURE format)."""
    import keras

    from .models.regression import ManifoldRegularizedMSE
    from .segmentation import limit_threads

    limit_threads(threads)
    x, idx = load_windows(windows, index)
    if not Path(model_path).is_file():
        raise InputError(f"{model_path}: no such file")
    model = keras.models.load_model(model_path, compile=False,
                                    custom_objects={"ManifoldRegularizedMSE": ManifoldRegularizedMSE})
    if len(x) and tuple(model.input_shape[1:3]) != x.shape[1:3]:
        raise InputError(f"{windows}: windows of {x.shape[1]} px but {model_path} expects {model.input_shape[1]} px")
    pred = model.predict(x, batch_size=batch_size, verbose=0).reshape(-1) if len(x) else np.zeros(0)
    out = idx[["triplet_id", "image_id", "subject_id", "split"]].copy()
    out["model"] = model_name
    out["predicted"] = pred.astype(float)
    for col in ("reference", "value_true", "fractured"):
        out[col] = idx[col]
    write_csv(out_csv, out[PREDICTION_COLUMNS])
    return out[PREDICTION_COLUMNS]
