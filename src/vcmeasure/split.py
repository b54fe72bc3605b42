"""Subject-grouped, stratified, seeded train/validation/test split (DESIGN §5 Split; paper Methods: 5:1).

The paper splits 387 images 5:1 into 323 training and 64 test images. Here whole subjects are assigned, so no
patient's images end up on both sides (87 of the paper's 300 subjects have two images). Subjects are
stratified by their largest reference value (``value_reader``; ``value_true`` where a reader value is missing)
into ``strata`` equal-count bins, and each bin contributes its share of test images, so the test set covers
normal and severely compressed spines alike. A validation share is carved from the remaining training subjects
the same way. Integer quotas are met to within one image where the subject sizes allow it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import load_dataset
from .errors import ConfigError, InputError
from .io import write_csv, write_text
from .measures import FRACTURE_THRESHOLD, genant_grade

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
PAPER_SPLIT = {"train": 323, "test": 64}


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def image_values(images: pd.DataFrame, measurements: pd.DataFrame) -> pd.Series:
    """Each image's largest reference value (NaN for an image without measured bodies), indexed by image_id."""
    values = pd.to_numeric(measurements["value_reader"], errors="coerce")
    if "value_true" in measurements:
        values = values.fillna(pd.to_numeric(measurements["value_true"], errors="coerce"))
    per_image = values.groupby(measurements["image_id"].astype(str)).max()
    return per_image.reindex(images["image_id"].astype(str))


def _subject_ids(images: pd.DataFrame) -> pd.Series:
    """subject_id as text; an image without one is its own subject (never merged with another unknown one)."""
    subject = images["subject_id"]
    missing = subject.isna() | (subject.astype(str).str.strip() == "")
    return subject.astype(str).where(~missing, "image:" + images["image_id"].astype(str))


def _subjects(images: pd.DataFrame, measurements: pd.DataFrame, strata: int) -> pd.DataFrame:
    """One row per subject: number of images, largest value, stratum (equal-count bins of that value)."""
    frame = pd.DataFrame({"image_id": images["image_id"].astype(str).to_numpy(),
                          "subject_id": _subject_ids(images).to_numpy()})
    frame["value"] = image_values(images, measurements).to_numpy()
    subj = (frame.groupby("subject_id", sort=True)
            .agg(n_images=("image_id", "size"), value=("value", "max"))
            .reset_index())
    # rank with a fixed tie order (value, then subject id) so bins do not depend on row order; no value = lowest
    order = subj.sort_values(["value", "subject_id"], na_position="first", kind="mergesort").index
    rank = pd.Series(np.arange(len(subj)), index=order).reindex(subj.index)
    n_bins = max(1, min(int(strata), len(subj)))
    subj["stratum"] = (rank * n_bins // len(subj)).astype(int)
    return subj


def _quotas(sizes: pd.Series, target: int) -> pd.Series:
    """Largest-remainder split of ``target`` images over strata in proportion to their image counts."""
    exact = sizes / sizes.sum() * target
    quota = np.floor(exact).astype(int)
    rest = target - int(quota.sum())
    if rest > 0:
        frac = (exact - quota).sort_values(ascending=False, kind="mergesort")
        quota[frac.index[:rest]] += 1
    return quota


def _grouped_pick(subj: pd.DataFrame, share: float, rng: np.random.Generator) -> set[str]:
    """Subjects holding about ``share`` of the images, stratum by stratum, chosen at random within a stratum."""
    if share <= 0 or subj.empty:
        return set()
    # at least one image: a tiny cohort still gets a test (or validation) subject rather than an empty side
    target = max(1, _round_half_up(subj["n_images"].sum() * share))
    quotas = _quotas(subj.groupby("stratum")["n_images"].sum(), target)
    picked: list[str] = []
    carry = 0  # images a stratum could not take (subject sizes) are asked of the next one
    for stratum, quota in quotas.items():
        need = int(quota) + carry
        members = subj[subj["stratum"] == stratum]
        for i in rng.permutation(len(members)):
            if need <= 0:
                break
            n = int(members["n_images"].iloc[i])
            if n <= need:
                picked.append(members["subject_id"].iloc[i])
                need -= n
        carry = need
    if carry > 0:  # last resort: any remaining subject that fits
        rest = subj[~subj["subject_id"].isin(picked)]
        for i in rng.permutation(len(rest)):
            n = int(rest["n_images"].iloc[i])
            if 0 < n <= carry:
                picked.append(rest["subject_id"].iloc[i])
                carry -= n
    if not picked:  # only subjects larger than the target are left: take one of the smallest
        smallest = subj[subj["n_images"] == subj["n_images"].min()]
        picked.append(smallest["subject_id"].iloc[int(rng.integers(len(smallest)))])
    return set(picked)


def make_split(images: pd.DataFrame, measurements: pd.DataFrame, test_share: float = 1 / 6,
               val_share: float = 0.1, strata: int = 4, seed: int = 42) -> pd.DataFrame:
    """Assign every image to train / val / test by subject; returns columns image_id, subject_id, split.

    ``test_share`` of all images go to test; ``val_share`` of the remaining (training) images go to val.
    Deterministic for a seed; rows keep the order of ``images``.
    """
    if not 0 < test_share < 1:
        raise ConfigError(f"split.test_share: must be in (0, 1), got {test_share}")
    if not 0 <= val_share < 1:
        raise ConfigError(f"split.val_share: must be in [0, 1), got {val_share}")
    if int(strata) < 1:
        raise ConfigError(f"split.strata: must be >= 1, got {strata}")
    for col in ("image_id", "subject_id"):
        if col not in images:
            raise InputError(f"images.csv: missing column {col}")
    ids = images["image_id"].astype(str)
    if ids.duplicated().any():
        raise InputError(f"images.csv: duplicate image_id {ids[ids.duplicated()].iloc[0]}")
    subj = _subjects(images, measurements, strata)
    if len(subj) < 2:
        raise InputError(f"images.csv: {len(subj)} subject(s); a train/test split needs at least 2")
    rng = np.random.default_rng([int(seed), 0x5B117])
    test = _grouped_pick(subj, test_share, rng)
    train_subj = subj[~subj["subject_id"].isin(test)]
    val = _grouped_pick(train_subj, val_share, rng) if len(train_subj) > 1 and val_share > 0 else set()

    subject_of = _subject_ids(images)
    split = np.where(subject_of.isin(test), "test", np.where(subject_of.isin(val), "val", "train"))
    return pd.DataFrame({"image_id": ids.to_numpy(), "subject_id": images["subject_id"].to_numpy(),
                         "split": split})


def _describe(values: pd.Series) -> str:
    v = values.dropna()
    if v.empty:
        return "– | – | – | –"
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.2f} ± {sd:.2f} | {v.median():.2f} | {v.min():.2f} | {v.max():.2f}"


def summary_markdown(split_df: pd.DataFrame, measurements: pd.DataFrame,
                     fracture_threshold: float = FRACTURE_THRESHOLD) -> str:
    """Markdown summary: images, subjects, measured bodies, fractured bodies and value distribution per split."""
    meas = measurements.copy()
    meas["image_id"] = meas["image_id"].astype(str)
    meas["value"] = pd.to_numeric(meas["value_reader"], errors="coerce")
    if "value_true" in meas:
        meas["value"] = meas["value"].fillna(pd.to_numeric(meas["value_true"], errors="coerce"))
    meas = meas.merge(split_df[["image_id", "split"]].astype({"image_id": str}), on="image_id", how="inner")
    measure = str(meas["measure"].dropna().iloc[0]) if "measure" in meas and meas["measure"].notna().any() else "value"

    lines = ["# Train / validation / test split", "",
             "Grouped by subject (no subject in two splits), stratified by each image's largest reference value, "
             "seeded (DESIGN §5).", "",
             f"| split | images | subjects | measured bodies | fractured (≥ {fracture_threshold:g}) | "
             f"{measure} mean ± SD | median | min | max |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    groups = [(name, split_df[split_df["split"] == name], meas[meas["split"] == name]) for name in SPLITS]
    groups.append(("all", split_df, meas))
    for name, imgs, m in groups:
        fractured = int((m["value"] >= fracture_threshold).sum())
        lines.append(f"| {name} | {len(imgs)} | {imgs['subject_id'].nunique()} | {len(m)} | {fractured} | "
                     f"{_describe(m['value'])} |")
    lines += ["", "Genant grade of the measured bodies (from the reference value):", "",
              "| split | grade 0 | grade 1 | grade 2 | grade 3 |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, _, m in groups:
        grades = pd.Series(genant_grade(m["value"].dropna().to_numpy()), dtype=int).value_counts()
        lines.append(f"| {name} | " + " | ".join(str(int(grades.get(g, 0))) for g in range(4)) + " |")
    shared = split_df.groupby("subject_id")["split"].nunique()
    n_train_all = int((split_df["split"] != "test").sum())
    n_test = int((split_df["split"] == "test").sum())
    lines += ["", f"Subjects in more than one split: {int((shared > 1).sum())}.",
              f"Train (incl. validation) : test = {n_train_all} : {n_test}"
              + (f" = {n_train_all / n_test:.2f} : 1" if n_test else "")
              + f"; paper: {PAPER_SPLIT['train']} : {PAPER_SPLIT['test']} (5:1).", ""]
    return "\n".join(lines)


def run_split(dataset_dir: str | Path, split_csv: str | Path, summary_md: str | Path, test_share: float = 1 / 6,
              val_share: float = 0.1, strata: int = 4, seed: int = 42,
              fracture_threshold: float = FRACTURE_THRESHOLD) -> pd.DataFrame:
    """The `split` step: read a canonical dataset, write ``split.csv`` and ``summary.md``."""
    ds = load_dataset(dataset_dir)
    split_df = make_split(ds.images, ds.measurements, test_share, val_share, strata, seed)
    write_csv(split_csv, split_df)
    write_text(summary_md, summary_markdown(split_df, ds.measurements, fracture_threshold))
    counts = split_df["split"].value_counts()
    log.info("split %s: %s", dataset_dir, ", ".join(f"{s} {int(counts.get(s, 0))}" for s in SPLITS))
    return split_df
