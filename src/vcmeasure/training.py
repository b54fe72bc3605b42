"""Resumable, seeded training shared by segmentation and regression (paper Methods; DESIGN §5).

Every completed epoch writes ``last.keras`` (weights *and* optimizer state), the history row and a small
``state.json`` into a checkpoint folder, in that order and each atomically, so a killed job that is rerun
resumes from its last completed epoch. The best epoch by a validation metric is kept as ``best.keras``.
A fingerprint of the run's settings guards against resuming a checkpoint made with another config.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .io import atomic_path, write_csv, write_text
from .seeding import seed_everything


@dataclass
class FitResult:
    model_path: Path
    history: pd.DataFrame
    best_epoch: int
    best_value: float
    resumed_from: int


def fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def fit_resumable(build_model: Callable, train, val, *, epochs: int, workdir: str | Path, monitor: str,
                  mode: str = "max", seed: int = 0, settings: dict | None = None,
                  custom_objects: dict | None = None, verbose: int = 2, callbacks=()) -> FitResult:
    """Train ``build_model()`` (compiled) on PyDatasets ``train``/``val``, checkpointing every epoch.

    Returns the path of the best model (by ``monitor``, ``mode`` max or min), the full history and the epoch
    it resumed from (0 for a fresh start).
    """
    import keras

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    state_path, last_path, best_path = workdir / "state.json", workdir / "last.keras", workdir / "best.keras"
    hist_path = workdir / "history.csv"
    fp = fingerprint({"settings": settings or {}, "seed": seed, "monitor": monitor})

    state = json.loads(state_path.read_text()) if state_path.exists() else None
    if state and state.get("fingerprint") == fp and last_path.exists():
        seed_everything(seed + int(state["epoch"]))
        model = keras.models.load_model(last_path, custom_objects=custom_objects)
        history = pd.read_csv(hist_path).iloc[: int(state["epoch"])] if hist_path.exists() else pd.DataFrame()
        initial_epoch = int(state["epoch"])
    else:
        for p in (state_path, last_path, best_path, hist_path):
            p.unlink(missing_ok=True)
        seed_everything(seed)
        model = build_model()
        history, initial_epoch = pd.DataFrame(), 0
        state = {"fingerprint": fp, "epoch": 0, "best_epoch": None, "best_value": None}

    rows = history.to_dict("records")
    # Loaders whose shuffling/augmentation is a function of their epoch counter (vcmeasure.loaders) restart at
    # the resumed epoch, so a resumed run sees the batches an uninterrupted run would have seen.
    if hasattr(train, "epoch"):
        train.epoch = initial_epoch

    class _Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            if monitor not in logs:
                raise KeyError(f"monitored metric '{monitor}' not in training logs {sorted(logs)}")
            rows.append({"epoch": epoch + 1, **logs})
            if _improved(logs[monitor], state["best_value"], mode):
                with atomic_path(best_path) as tmp:
                    self.model.save(tmp)
                state["best_value"], state["best_epoch"] = logs[monitor], epoch + 1
            with atomic_path(last_path) as tmp:
                self.model.save(tmp)
            write_csv(hist_path, pd.DataFrame(rows))
            state["epoch"] = epoch + 1
            write_text(state_path, json.dumps(state, indent=1))

    if initial_epoch < epochs:
        # shuffle=False: Keras would otherwise permute a PyDataset's batches with Python's global `random`,
        # whose state a resumed process cannot reproduce; the loaders shuffle themselves by (seed, epoch).
        model.fit(train, validation_data=val, epochs=epochs, initial_epoch=initial_epoch,
                  callbacks=[_Checkpoint(), *callbacks], verbose=verbose, shuffle=False)
    return FitResult(best_path, pd.DataFrame(rows), int(state["best_epoch"] or 0),
                     float(state["best_value"] if state["best_value"] is not None else float("nan")),
                     initial_epoch)


def finalize(result: FitResult, model_out: str | Path, history_out: str | Path, workdir: str | Path,
             keep_checkpoint: bool = False) -> None:
    """Copy the best model and history to the rule's outputs, then drop the checkpoint folder."""
    with atomic_path(model_out) as tmp:
        shutil.copyfile(result.model_path, tmp)
    write_csv(history_out, result.history)
    if not keep_checkpoint:
        shutil.rmtree(workdir, ignore_errors=True)
