"""The segmentation step: train, predict, evaluate (Table 1), select the architecture, Figure 6.

Paper Methods ("Vertebral body segmentation model based on CNN", Eqs. 2-5, Table 1, Fig. 6); DESIGN §4-§7;
ARCHITECTURE.md (segmentation row) fixes the files. The workflow scripts call these functions:

- :func:`train` — one architecture on the train split, epoch selection on the val split by ``val_dice``,
  resumable through :func:`vcmeasure.training.fit_resumable` (checkpoint every epoch with optimizer state).
- :func:`predict` — a label map (bodies 1..K top to bottom, :mod:`vcmeasure.postprocess`) for every image.
- :func:`evaluate` — per test image metrics (:mod:`vcmeasure.seg_metrics`) and Table 1 with the paper's values.
- :func:`select_architecture` — best mean DSC, ties broken by the configured order.
- :func:`figure6` — original, preprocessed, each architecture's output and the ground truth for 3 test images.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError, InputError
from .io import atomic_dir, read_image, read_mask, write_csv, write_png, write_text
from .postprocess import probability_to_labels
from .seg_metrics import METRICS, image_metrics

log = logging.getLogger(__name__)

# Paper Table 1 (mean, SD). The text gives R2U-Net specificity 0.998 as in the table; DESIGN §7 says 0.997.
PAPER_TABLE1 = {
    "unet": {"sensitivity": (0.930, 0.116), "specificity": (0.997, 0.001), "accuracy": (0.987, 0.006),
             "dsc": (0.903, 0.090)},
    "resunet": {"sensitivity": (0.925, 0.065), "specificity": (0.997, 0.003), "accuracy": (0.987, 0.005),
                "dsc": (0.920, 0.068)},
    "r2unet": {"sensitivity": (0.934, 0.086), "specificity": (0.998, 0.002), "accuracy": (0.987, 0.005),
               "dsc": (0.923, 0.073)},
}
DISPLAY = {"unet": "U-Net", "resunet": "ResU-Net", "r2unet": "R2U-Net"}
TABLE1_COLUMNS = ["architecture", "sensitivity_mean", "sensitivity_sd", "specificity_mean", "specificity_sd",
                  "accuracy_mean", "accuracy_sd", "dsc_mean", "dsc_sd", "detection_rate_mean", "hd95_mean",
                  "n_images"]


# ----------------------------------------------------------------------------------------------- inputs
def read_split(split_csv: str | Path) -> pd.DataFrame:
    """split.csv (image_id, subject_id, split) with ids as strings; InputError naming the file if malformed."""
    split_csv = Path(split_csv)
    if not split_csv.is_file():
        raise InputError(f"{split_csv}: no such file")
    df = pd.read_csv(split_csv, dtype={"image_id": str, "subject_id": str})
    missing = {"image_id", "subject_id", "split"} - set(df.columns)
    if missing:
        raise InputError(f"{split_csv}: missing column(s) {', '.join(sorted(missing))}")
    return df


def split_ids(split: pd.DataFrame, name: str, source: str | Path = "split.csv") -> list[str]:
    ids = sorted(split.loc[split["split"] == name, "image_id"])
    if not ids:
        raise InputError(f"{source}: no '{name}' images")
    return ids


def to_unit(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 image -> float32 in [0, 1] (by the dtype's range, as the loaders do)."""
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image.astype(np.float32) / scale


def limit_threads(threads: int | None) -> None:
    """Keep the backend within the rule's ``threads`` (TensorFlow only; must run before any op executes)."""
    import keras

    if threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(min(2, int(threads)))
        except RuntimeError:  # already initialised (e.g. in a test session): keep the current pool
            pass


def _image_path(directory: Path, image_id: str) -> Path:
    path = directory / f"{image_id}.png"
    if not path.is_file():
        raise InputError(f"{path}: no such file (image listed in split.csv)")
    return path


# ----------------------------------------------------------------------------------------------- train
def train(arch: str, images_dir: str | Path, masks_dir: str | Path, split_csv: str | Path,
          model_out: str | Path, history_out: str | Path, curve_out: str | Path, *,
          checkpoint_dir: str | Path, base_filters: int = 64, depth: int = 4, batch_size: int = 5,
          epochs: int = 200, learning_rate: float = 1e-3, augment: bool = True, seed: int = 0,
          verbose: int = 2, callbacks: Sequence = (), threads: int | None = None):
    """Train ``arch`` on the split's train images, keep the best epoch by ``val_dice``; write model/history/PNG.

    Returns the :class:`vcmeasure.training.FitResult`. A rerun after a kill resumes from ``checkpoint_dir``.
    """
    from .loaders import SegmentationDataset  # imports keras: after gpu.claim_gpu() in the script
    from .models.segmentation import ARCHITECTURES, build_segmentation_model, compile_segmentation_model
    from .training import finalize, fit_resumable

    if arch not in ARCHITECTURES:
        raise ConfigError(f"segmentation.architectures: unknown architecture '{arch}'")
    limit_threads(threads)
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    split = read_split(split_csv)
    train_ids, val_ids = split_ids(split, "train", split_csv), split_ids(split, "val", split_csv)
    size = read_image(_image_path(images_dir, train_ids[0])).shape
    if size[0] != size[1] or size[0] % 2**depth:
        raise InputError(f"{images_dir}: images must be square with a side divisible by 2**depth "
                         f"(segmentation.depth={depth}), got {size}")
    input_size = int(size[0])

    train_ds = SegmentationDataset(images_dir, masks_dir, train_ids, batch_size, augment=augment, seed=seed,
                                   shuffle=True)
    val_ds = SegmentationDataset(images_dir, masks_dir, val_ids, batch_size, augment=False, seed=seed,
                                 shuffle=False)
    settings = {"arch": arch, "input_size": input_size, "base_filters": base_filters, "depth": depth,
                "batch_size": batch_size, "learning_rate": learning_rate, "augment": augment,
                "ids": hashlib.sha256(("|".join(train_ids) + "#" + "|".join(val_ids)).encode()).hexdigest()}

    def build():
        model = build_segmentation_model(arch, input_size, base_filters, depth)
        return compile_segmentation_model(model, learning_rate)

    log.info("training %s: %d train / %d val images, %d px, %d epochs", arch, len(train_ids), len(val_ids),
             input_size, epochs)
    result = fit_resumable(build, train_ds, val_ds, epochs=epochs, workdir=checkpoint_dir, monitor="val_dice",
                           mode="max", seed=seed, settings=settings, verbose=verbose, callbacks=callbacks)
    log.info("best epoch %d (val_dice %.4f), resumed from epoch %d", result.best_epoch, result.best_value,
             result.resumed_from)
    plot_learning_curve(result.history, curve_out, title=DISPLAY.get(arch, arch), best_epoch=result.best_epoch)
    finalize(result, model_out, history_out, checkpoint_dir)
    return result


def plot_learning_curve(history: pd.DataFrame, out_png: str | Path, title: str = "", best_epoch: int = 0) -> None:
    """Loss and DSC per epoch, train and validation, the kept epoch marked."""
    import matplotlib.pyplot as plt

    from .plotting import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "loss", "loss (BCE + Dice)"), (axes[1], "dice", "DSC")):
        for col, style in ((key, "-"), (f"val_{key}", "--")):
            if col in history:
                ax.plot(history["epoch"], history[col], style, marker="o", ms=3, label=col)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", lw=0.8, ls=":", label=f"kept epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title} learning curve")
    fig.tight_layout()
    save_figure(fig, out_png)


# ----------------------------------------------------------------------------------------------- predict
def predict(model_path: str | Path, images_dir: str | Path, out_dir: str | Path, *, threshold: float = 0.5,
            min_component_px: int = 0, batch_size: int = 4, threads: int | None = None) -> list[str]:
    """Write ``out_dir/<id>.png`` label maps for every image in ``images_dir``; return the ids."""
    import keras

    from .models import segmentation as _seg  # noqa: F401 - registers the loss and metric for loading

    limit_threads(threads)
    images_dir = Path(images_dir)
    paths = sorted(images_dir.glob("*.png"))
    if not paths:
        raise InputError(f"{images_dir}: no .png images to segment")
    model = keras.models.load_model(model_path, compile=False)
    with atomic_dir(out_dir) as tmp:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            x = np.stack([to_unit(read_image(p)) for p in chunk])[..., None]
            prob = np.asarray(model.predict_on_batch(x))
            for p, pr in zip(chunk, prob, strict=True):
                write_png(tmp / p.name, probability_to_labels(pr, threshold, min_component_px))
    log.info("segmented %d images into %s", len(paths), out_dir)
    return [p.stem for p in paths]


# ----------------------------------------------------------------------------------------------- evaluate
def evaluate_architecture(pred_dir: str | Path, gt_dir: str | Path, test: pd.DataFrame) -> pd.DataFrame:
    """Per test image metrics (image_id, subject_id, sensitivity, ..., hd95, n_bodies_true, n_bodies_pred)."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    rows = []
    for image_id, subject_id in zip(test["image_id"], test["subject_id"], strict=True):
        truth = read_mask(_image_path(gt_dir, image_id))
        pred = read_mask(_image_path(pred_dir, image_id))
        if pred.shape != truth.shape:
            raise InputError(f"{pred_dir / (image_id + '.png')}: shape {pred.shape} differs from ground truth "
                             f"{truth.shape}")
        rows.append({"image_id": image_id, "subject_id": subject_id, **image_metrics(pred, truth)})
    return pd.DataFrame(rows)


def summarize(per_image: pd.DataFrame, arch: str) -> dict:
    """One Table 1 row: mean and sample SD (ddof=1) over test images; NaNs (undefined ratios) left out."""
    row: dict = {"architecture": arch}
    for m in ("sensitivity", "specificity", "accuracy", "dsc"):
        row[f"{m}_mean"] = float(per_image[m].mean())
        row[f"{m}_sd"] = float(per_image[m].std(ddof=1)) if per_image[m].count() > 1 else math.nan
    row["detection_rate_mean"] = float(per_image["detection_rate"].mean())
    row["hd95_mean"] = float(per_image["hd95"].mean())
    row["n_images"] = int(len(per_image))
    return row


def _pm(mean: float, sd: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.3f}" if math.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def table1_markdown(table: pd.DataFrame) -> str:
    """Table 1 as Markdown: this run's mean ± SD with the paper's value beside each."""
    lines = [
        "# Table 1 — vertebral body segmentation (test images)",
        "",
        "Per test image, foreground = any vertebral body; mean ± SD over images (paper Eqs. 2–5, DESIGN §4). "
        "Paper values (Seo et al. 2021, Table 1) in brackets. Detection rate: share of true bodies matched "
        "by a predicted body with DSC ≥ 0.5; HD95 in preprocessed pixels (not in the paper).",
        "",
        "| architecture | sensitivity | specificity | accuracy | DSC | detection rate | HD95 (px) | n |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in table.itertuples(index=False):
        paper = PAPER_TABLE1.get(row.architecture, {})
        cells = []
        for m in ("sensitivity", "specificity", "accuracy", "dsc"):
            cell = _pm(getattr(row, f"{m}_mean"), getattr(row, f"{m}_sd"))
            if m in paper:
                cell += f" [{_pm(*paper[m])}]"
            cells.append(cell)
        hd = "n/a" if math.isnan(row.hd95_mean) else f"{row.hd95_mean:.1f}"
        det = "n/a" if math.isnan(row.detection_rate_mean) else f"{row.detection_rate_mean:.3f}"
        lines.append(f"| {DISPLAY.get(row.architecture, row.architecture)} | {' | '.join(cells)} | {det} | {hd} "
                     f"| {row.n_images} |")
    return "\n".join(lines) + "\n"


def evaluate(archs: Sequence[str], pred_dirs: Sequence[str | Path], gt_dir: str | Path, split_csv: str | Path,
             per_image_outs: Sequence[str | Path], table_csv: str | Path, table_md: str | Path) -> pd.DataFrame:
    """Per-image CSV for each architecture and Table 1 (CSV + Markdown) over the split's test images."""
    if not (len(archs) == len(pred_dirs) == len(per_image_outs)):
        raise ValueError("archs, pred_dirs and per_image_outs must have the same length")
    split = read_split(split_csv)
    test = split[split["split"] == "test"].sort_values("image_id")
    if test.empty:
        raise InputError(f"{split_csv}: no 'test' images")
    rows = []
    for arch, pred_dir, out in zip(archs, pred_dirs, per_image_outs, strict=True):
        per_image = evaluate_architecture(pred_dir, gt_dir, test)
        write_csv(out, per_image)
        rows.append(summarize(per_image, arch))
    table = pd.DataFrame(rows, columns=TABLE1_COLUMNS)
    write_csv(table_csv, table)
    write_text(table_md, table1_markdown(table))
    return table


def select_architecture(table_csv: str | Path, archs: Sequence[str], out_txt: str | Path) -> str:
    """Write the architecture with the best mean DSC (first in ``archs`` order on a tie); return it."""
    table = pd.read_csv(table_csv)
    if "architecture" not in table or "dsc_mean" not in table:
        raise InputError(f"{table_csv}: needs columns architecture and dsc_mean")
    dsc = dict(zip(table["architecture"], table["dsc_mean"], strict=True))
    candidates = [a for a in archs if a in dsc and not math.isnan(dsc[a])]
    if not candidates:
        raise InputError(f"{table_csv}: no architecture of {list(archs)} has a mean DSC")
    best = max(candidates, key=lambda a: (dsc[a], -archs.index(a)))  # earlier wins ties
    write_text(out_txt, best + "\n")
    log.info("selected %s (mean DSC %.4f)", best, dsc[best])
    return best


# ----------------------------------------------------------------------------------------------- figure 6
def pick_examples(ids: Sequence[str], n: int = 3) -> list[str]:
    """n ids spread evenly over the sorted list (deterministic, no cherry-picking)."""
    ids = sorted(ids)
    if len(ids) <= n:
        return ids
    return [ids[int(round(i))] for i in np.linspace(0, len(ids) - 1, n)]


def figure6(archs: Sequence[str], raw_dataset_dir: str | Path, pre_images_dir: str | Path,
            pred_dirs: Sequence[str | Path], gt_dir: str | Path, split_csv: str | Path, out_png: str | Path,
            n_images: int = 3) -> list[str]:
    """Paper Fig. 6: rows = test images; columns = original (``<raw_dataset_dir>/images``), preprocessed,
    each architecture's label map and the ground truth."""
    import matplotlib.pyplot as plt
    from skimage.color import label2rgb

    from .plotting import save_figure

    split = read_split(split_csv)
    ids = pick_examples(split.loc[split["split"] == "test", "image_id"], n_images)
    if not ids:
        raise InputError(f"{split_csv}: no 'test' images for Figure 6")
    raw_dir, pre_dir, gt_dir = Path(raw_dataset_dir) / "images", Path(pre_images_dir), Path(gt_dir)
    titles = ["(a) original", "(b) preprocessed",
              *[f"({chr(ord('c') + i)}) {DISPLAY.get(a, a)}" for i, a in enumerate(archs)],
              f"({chr(ord('c') + len(archs))}) ground truth"]
    fig, axes = plt.subplots(len(ids), len(titles), figsize=(2.2 * len(titles), 2.3 * len(ids)), squeeze=False)
    for r, image_id in enumerate(ids):
        raw = read_image(_image_path(raw_dir, image_id))
        panels = [(raw, "gray"), (read_image(_image_path(pre_dir, image_id)), "gray")]
        for d in (*pred_dirs, gt_dir):
            labels = read_mask(_image_path(Path(d), image_id))
            panels.append((label2rgb(labels, bg_label=0, bg_color=(0, 0, 0)), None))
        for c, (img, cmap) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img, cmap=cmap, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
        axes[r, 0].set_ylabel(image_id, fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_png)
    return ids


__all__ = ["METRICS", "PAPER_TABLE1", "TABLE1_COLUMNS", "evaluate", "evaluate_architecture", "figure6", "predict",
           "select_architecture", "summarize", "table1_markdown", "train"]
