"""``results/summary.md`` and ``results/metrics.json``: every paper number beside this run's (DESIGN §6, §7).

The paper numbers are those of DESIGN §7 (Seo et al. 2021: Methods "Dataset", Results, Tables 1 and 2, Fig. 7).
This run's numbers are read back from the workflow's own outputs (cohort tables, split, triplet summary,
Table 1, Table 2, agreement.json) so the summary cannot drift from them. A dataset whose measure is not
``vc_anterior`` is named by its measure everywhere: this module never calls it VC.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .errors import InputError
from .io import read_csv_checked, read_json, write_text

# DESIGN §7 (paper values). Table 1 specificity of R2U-Net: 0.997 in the abstract, 0.998 in Table 1 (see notes).
PAPER = {
    "images": 387, "subjects": 300, "levels": "T8–L5",
    "value_min": 0.01, "value_max": 59.06, "value_mean": 8.61, "value_sd": 9.30,
    "train_images": 323, "test_images": 64, "images_failed": 83,
    "windows_generated": 1366, "images_with_windows": 304, "windows_accepted": 1134,
    "windows_train": 945, "windows_test": 189, "fractured_test": 83,
    "dsc": {"unet": (0.903, 0.090), "resunet": (0.920, 0.068), "r2unet": (0.923, 0.073)},
    "r2unet": {"sensitivity": (0.934, 0.086), "specificity": (0.997, 0.002), "accuracy": (0.987, 0.005)},
    "selected": "r2unet", "pearson_r": stats.PAPER_PEARSON_R, "ba_share_inside": 0.95,
}
PAPER_EPOCHS = {"segmentation": 200, "regression": 150}
ARCH_LABELS = {"unet": "U-Net", "resunet": "ResU-Net", "r2unet": "R2U-Net"}
LEVEL_ORDER = {"C": 0, "T": 1, "L": 2, "S": 3}


def _read_csv(path: str | Path, columns: list[str], **kwargs) -> pd.DataFrame:
    return read_csv_checked(path, columns, **kwargs)


def _level_key(level: str):
    m = re.fullmatch(r"\s*([CTLS])(\d+)\s*", str(level).upper())
    return (LEVEL_ORDER[m.group(1)], int(m.group(2))) if m else None


def cohort_stats(images_csv: str | Path, measurements_csv: str | Path, vertebrae_csv: str | Path | None = None,
                 fracture_threshold: float = 20.0) -> dict:
    """Images, subjects, fractured levels and the reader's values (min / max / mean / SD) of the dataset."""
    ids = {"image_id": str, "subject_id": str, "level": str}
    images = _read_csv(images_csv, ["image_id", "subject_id"], dtype=ids)
    meas = _read_csv(measurements_csv, ["image_id", "label", "measure", "value_reader"], dtype=ids)
    values = pd.to_numeric(meas["value_reader"], errors="coerce").dropna().to_numpy(float)
    out = {
        "images": int(images["image_id"].nunique()), "subjects": int(images["subject_id"].nunique()),
        "measure": stats.read_measure(measurements_csv), "bodies_measured": int(len(meas)),
        "value_min": float(values.min()) if values.size else math.nan,
        "value_max": float(values.max()) if values.size else math.nan,
        "value_mean": float(values.mean()) if values.size else math.nan,
        "value_sd": float(values.std(ddof=1)) if values.size > 1 else math.nan,
        "levels": "n/a", "fractured_bodies": int(np.sum(values >= fracture_threshold)),
    }
    if vertebrae_csv is not None and Path(vertebrae_csv).is_file():
        vert = _read_csv(vertebrae_csv, ["image_id", "label", "level", "fractured"], dtype=ids)
        merged = vert.merge(meas[["image_id", "label", "value_reader"]], on=["image_id", "label"], how="left")
        flag = pd.to_numeric(merged["fractured"], errors="coerce")
        value = pd.to_numeric(merged["value_reader"], errors="coerce")
        fractured = flag.eq(1) | (flag.isna() & value.ge(fracture_threshold))
        out["fractured_bodies"] = int(fractured.sum())
        keys = sorted({k for k in map(_level_key, merged.loc[fractured, "level"].dropna()) if k})
        if keys:
            names = {v: k for k, v in LEVEL_ORDER.items()}
            out["levels"] = f"{names[keys[0][0]]}{keys[0][1]}–{names[keys[-1][0]]}{keys[-1][1]}"
    return out


def split_counts(split_csv: str | Path) -> dict:
    """Images per split; the paper's 'train' (323) includes what we carve out for validation."""
    split = _read_csv(split_csv, ["image_id", "subject_id", "split"], dtype={"image_id": str, "subject_id": str})
    counts = split["split"].astype(str).value_counts()
    train, val, test = (int(counts.get(k, 0)) for k in ("train", "val", "test"))
    return {"train": train, "val": val, "test": test, "train_incl_val": train + val,
            "subjects_test": int(split.loc[split["split"] == "test", "subject_id"].nunique())}


def read_triplet_summary(path: str | Path) -> dict:
    path = Path(path)
    data = read_json(path)
    need = ["images_total", "images_failed", "windows_generated", "windows_accepted", "windows_by_split",
            "fractured_test"]
    missing = [k for k in need if k not in data]
    if missing:
        raise InputError(f"{path}: missing key(s) {', '.join(missing)}")
    return data


def _arch_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def read_table1(table1_csv: str | Path) -> dict:
    """Table 1 as {arch: {metric: (mean, sd)}}, arch names normalised ('R2U-Net' -> 'r2unet')."""
    cols = ["architecture"] + [f"{m}_{s}" for m in ("sensitivity", "specificity", "accuracy", "dsc")
                               for s in ("mean", "sd")]
    table = _read_csv(table1_csv, cols)
    out = {}
    for _, row in table.iterrows():
        out[_arch_key(row["architecture"])] = {
            m: (float(row[f"{m}_mean"]), float(row[f"{m}_sd"]))
            for m in ("sensitivity", "specificity", "accuracy", "dsc")
        }
    return out


def _num(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{x:.{digits}f}"


def _pm(pair, digits: int = 3) -> str:
    if pair is None:
        return "n/a"
    mean, sd = pair
    return "n/a" if not math.isfinite(mean) else f"{mean:.{digits}f} ± {_num(sd, digits)}"


def _cfg(config: dict, *keys, default="n/a"):
    node = config
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _fmt_value(v) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return str(v)


def _table(rows: list[tuple], header: tuple) -> str:
    frame = pd.DataFrame(rows, columns=list(header))
    return frame.to_markdown(index=False)


def config_rows(config: dict, measure: str, dataset_dir: str | None = None) -> list[tuple]:
    """The settings that decide how comparable this run is with the paper."""
    name = _cfg(config, "data", "name")
    rows = [
        ("dataset", f"{name} ({dataset_dir or f'data/raw/{name}'})"),
        ("data source", _cfg(config, "data", "source")),
        ("measure", f"`{measure}` ({stats.measure_label(measure)})"),
    ]
    if _cfg(config, "data", "source") == "synthetic":
        rows += [("synthetic preset", _cfg(config, "synthetic", "preset")),
                 ("simulated reader noise SD", _cfg(config, "synthetic", "reader_noise_sd"))]
    rows += [
        ("seed", _cfg(config, "seed")),
        ("fracture threshold", _cfg(config, "fracture_threshold")),
        ("image size (px)", _cfg(config, "preprocess", "image_size")),
        ("segmentation architectures", _cfg(config, "segmentation", "architectures")),
        ("segmentation epochs / batch / lr / base filters",
         " / ".join(_fmt_value(_cfg(config, "segmentation", k))
                    for k in ("epochs", "batch_size", "learning_rate", "base_filters"))),
        ("triplet window (px)", _cfg(config, "triplets", "window_size")),
        ("triplet source train / eval", f"{_cfg(config, 'triplets', 'train_source')} / "
                                        f"{_cfg(config, 'triplets', 'eval_source')}"),
        ("regression models", _cfg(config, "regression", "models")),
        ("regression epochs / batch / lr / MRDN filters",
         " / ".join(_fmt_value(_cfg(config, "regression", k))
                    for k in ("epochs", "batch_size", "learning_rate", "mrdn_filters"))),
        ("bootstrap resamples (subjects)", _cfg(config, "stats", "bootstrap")),
    ]
    return [(k, _fmt_value(v)) for k, v in rows]


def _by_method(table: pd.DataFrame) -> dict:
    return {str(r["method"]): r for _, r in table.iterrows()}


def build_summary(config: dict, cohort: dict, split: dict, triplets: dict, table1: dict, selected: str,
                  table2: pd.DataFrame, table2_true: pd.DataFrame, agreement: dict,
                  dataset_dir: str | None = None) -> tuple[str, dict]:
    """Return (summary.md text, metrics.json dict)."""
    measure = cohort["measure"]
    is_vc = measure == stats.MEASURE_VC
    qty = "VC (%)" if is_vc else f"`{measure}`"
    t2, t2t = _by_method(table2), _by_method(table2_true)
    methods = list(t2)
    head = "mrdn" if "mrdn" in t2 else (methods[-1] if methods else None)
    head_agree = agreement.get("methods", {}).get(head, {}).get("fractured_test", {}) if head else {}
    pear = head_agree.get("pearson", {})
    ba = head_agree.get("bland_altman", {})
    by_split = triplets.get("windows_by_split", {})
    P = PAPER

    rows = [
        ("Images", P["images"], cohort["images"]),
        ("Subjects", P["subjects"], cohort["subjects"]),
        ("Levels of the fractured bodies", P["levels"], cohort["levels"]),
        (f"{qty} min / max (reader)", f"{P['value_min']:.2f} / {P['value_max']:.2f}",
         f"{_num(cohort['value_min'], 2)} / {_num(cohort['value_max'], 2)}"),
        (f"{qty} mean / SD (reader)", f"{P['value_mean']:.2f} / {P['value_sd']:.2f}",
         f"{_num(cohort['value_mean'], 2)} / {_num(cohort['value_sd'], 2)}"),
        ("Split train / test images (train incl. validation)", f"{P['train_images']} / {P['test_images']}",
         f"{split['train_incl_val']} / {split['test']} (validation {split['val']})"),
        ("Images failed segmentation", P["images_failed"], triplets["images_failed"]),
        ("Triplets generated (from images)", f"{P['windows_generated']} ({P['images_with_windows']})",
         f"{triplets['windows_generated']} ({int(triplets['images_total']) - int(triplets['images_failed'])})"),
        ("Triplets used (accepted)", P["windows_accepted"], triplets["windows_accepted"]),
        ("Triplets used train / test", f"{P['windows_train']} / {P['windows_test']}",
         f"{int(by_split.get('train', 0)) + int(by_split.get('val', 0))} / {int(by_split.get('test', 0))}"),
        ("Fractured test vertebrae", P["fractured_test"], _fractured_test(triplets, t2, head)),
    ]
    for arch in ("unet", "resunet", "r2unet"):
        rows.append((f"Table 1 DSC, {ARCH_LABELS[arch]}", _pm(P["dsc"][arch]),
                     _pm(table1[arch]["dsc"]) if arch in table1 else "not run"))
    for metric in ("sensitivity", "specificity", "accuracy"):
        rows.append((f"Table 1 R2U-Net {metric}", _pm(P["r2unet"][metric]),
                     _pm(table1["r2unet"][metric]) if "r2unet" in table1 else "not run"))
    rows.append(("Selected segmentation architecture", ARCH_LABELS[P["selected"]],
                 ARCH_LABELS.get(_arch_key(selected), selected or "n/a")))
    for method, paper in stats.PAPER_TABLE2.items():
        row = t2.get(method)
        ours = "not run" if row is None else f"{_pm((row['mae'], row['mae_sd']))} (n = {int(row['n'])})"
        rows.append((f"Table 2 MAE ± SD, {stats.method_label(method)}", _pm(paper["mae"]), ours))
    mrdn = t2.get("mrdn")
    rows.append(("Table 2 MSE ± SD, MRDN", _pm(stats.PAPER_TABLE2["mrdn"]["mse"]),
                 "not run" if mrdn is None else _pm((mrdn["mse"], mrdn["mse_sd"]))))
    rows.append(("Table 2 RMSE, MRDN (paper ± SD; ours [95 % CI over subjects])",
                 _pm(stats.PAPER_TABLE2["mrdn"]["rmse"]),
                 "not run" if mrdn is None else
                 f"{_num(mrdn['rmse'])} [{_num(mrdn['rmse_ci_low'])}, {_num(mrdn['rmse_ci_high'])}]"))
    p_text = "n/a" if pear.get("p") is None or not math.isfinite(pear.get("p") or math.nan) else f"{pear['p']:.2g}"
    rows.append((f"Pearson r, {stats.method_label(head) if head else 'n/a'}", f"{P['pearson_r']} (p < 0.05)",
                 f"{_num(pear.get('r'))} (p = {p_text})"))
    share = ba.get("share_inside")
    rows.append(("Bland–Altman share inside bias ± 1.96 SD", "95 %",
                 "n/a" if share is None or not math.isfinite(share) else f"{100 * share:.0f} %"))

    lines = [
        "# Seo et al. 2021 beside this run", "",
        "Every number the paper reports (DESIGN §7) beside this run's, then the settings used and what differs.", "",
        "## Paper vs. this run", "",
        _table([(a, _fmt_value(b), _fmt_value(c)) for a, b, c in rows], ("quantity", "paper", "this run")), "",
        "## Table 2 against the exact value (`value_true`)", "",
        "The synthetic generator knows the exact value from the corners; the reader's value adds noise. "
        "No paper counterpart." if config.get("data", {}).get("source") == "synthetic" else
        "The value computed from the annotated corners; no paper counterpart.", "",
        _table([(stats.method_label(m), int(r["n"]), _pm((r["mae"], r["mae_sd"])), _num(float(r["rmse"])))
                for m, r in t2t.items()], ("method", "n", "MAE ± SD", "RMSE")), "",
        "## Configuration and data", "",
        _table(config_rows(config, measure, dataset_dir), ("setting", "value")), "",
        "## What differs and why", "",
        *[f"- {note}" for note in notes(config, cohort, split, table2, is_vc)], "",
    ]
    text = "\n".join(lines)

    metrics = {
        "n_images": cohort["images"], "n_subjects": cohort["subjects"],
        "n_fractured_test": int(t2[head]["n"]) if head else 0,
        "dsc": {arch: table1[arch]["dsc"][0] for arch in table1},
        "mae": {m: r["mae"] for m, r in t2.items()},
        "rmse": {m: r["rmse"] for m, r in t2.items()},
        "n": {m: int(r["n"]) for m, r in t2.items()},
        "mae_value_true": {m: r["mae"] for m, r in t2t.items()},
        f"pearson_r_{head}" if head else "pearson_r": pear.get("r"),
    }
    return text, stats.to_json_safe(metrics)


def _fractured_test(triplets: dict, t2: dict, head: str | None) -> str:
    """The triplet step's count; Table 2's n beside it when they differ (e.g. eval_source = groundtruth)."""
    count = int(triplets["fractured_test"])
    scored = int(t2[head]["n"]) if head else 0
    return str(count) if scored == count else f"{count} (scored in Table 2: {scored})"


def notes(config: dict, cohort: dict, split: dict, table2: pd.DataFrame, is_vc: bool) -> list[str]:
    """Plain-language reasons why this run's numbers differ from the paper's."""
    out = []
    source = _cfg(config, "data", "source")
    if source == "synthetic":
        out.append(
            f"**Synthetic data.** The paper's 387 clinical radiographs are not public; this run uses simulated "
            f"lateral spine images (preset `{_cfg(config, 'synthetic', 'preset')}`) whose 'reader' value is the exact "
            f"value plus noise of SD {_cfg(config, 'synthetic', 'reader_noise_sd')}. Cohort counts and value ranges "
            f"follow the generator, not the hospital, so they are not expected to match.")
    else:
        out.append(f"**Other data.** This run uses the `{source}` dataset `{_cfg(config, 'data', 'name')}`, "
                   f"not the paper's private cohort: counts and ranges differ by construction.")
    if not is_vc:
        out.append(
            f"**Different measure.** This dataset's measure is `{cohort['measure']}`, not the anterior vertebral "
            f"compression of the paper's Eq. 1 (its views cannot give anterior heights). The paper's numbers are "
            f"shown for orientation only; Genant grades and the surgical threshold are not computed.")
    seg_e, reg_e = _cfg(config, "segmentation", "epochs"), _cfg(config, "regression", "epochs")
    size = _cfg(config, "preprocess", "image_size")
    small = any(isinstance(v, (int, float)) and v < ref for v, ref in
                ((seg_e, PAPER_EPOCHS["segmentation"]), (reg_e, PAPER_EPOCHS["regression"]), (size, 512)))
    if small:
        out.append(
            f"**Smaller scale.** Trained for {seg_e} segmentation / {reg_e} regression epochs at {size} px "
            f"(paper: 200 / 150 epochs at 512 px, 64 base filters; here "
            f"{_cfg(config, 'segmentation', 'base_filters')} / MRDN {_cfg(config, 'regression', 'mrdn_filters')}), "
            f"so that it runs on a CPU in minutes. Under-trained networks give lower DSCs, fewer accepted triplets "
            f"and larger errors than the paper.")
    else:
        out.append("**Paper scale.** Epochs and image size match the paper's; differences come from data and "
                   "randomness, not from a shortened schedule.")
    out.append(
        f"**Subject-grouped split.** Images are split 5:1 by subject (no subject on both sides), stratified and "
        f"seeded; the paper does not say whether its 323 / 64 split kept a subject's images together. Grouping "
        f"avoids leaking a subject's other radiograph into the test set, and makes the counts "
        f"({split['train_incl_val']} / {split['test']}) only approximately 5:1.")
    if _cfg(config, "triplets", "eval_source") == "groundtruth":
        out.append("**Ground-truth windows.** `triplets.eval_source = groundtruth`: Table 2 scores windows cut "
                   "from the annotated masks, not from the selected network's masks as in the paper.")
    out.append(
        "**Uncertainty.** The paper gives RMSE ± SD; we give a 95 % bootstrap CI that resamples subjects, because "
        "vertebrae of one subject are not independent. SDs are sample SDs.")
    n_min = int(table2["n"].min()) if len(table2) else 0
    if n_min < 30:
        out.append(
            f"**Few test vertebrae.** As few as {n_min} fractured test vertebrae per method (paper: 83): the "
            f"statistics are unstable, and any that is undefined (n < 2, constant values) is shown as n/a.")
    out.append(
        "**Paper inconsistency.** R2U-Net specificity is 0.997 ± 0.002 in the paper's abstract and 0.998 ± 0.002 "
        "in its Table 1; we quote the abstract (DESIGN §7).")
    return out


def write_summary(table2_csv: str, table2_true_csv: str, agreement_json: str, table1_csv: str, selected_txt: str,
                  split_csv: str, triplet_summary_json: str, images_csv: str, measurements_csv: str,
                  vertebrae_csv: str | None, config: dict, out_md: str, out_metrics: str) -> None:
    """Rule ``summary``: results/summary.md and results/metrics.json."""
    selected_path = Path(selected_txt)
    if not selected_path.is_file():
        raise InputError(f"{selected_path}: missing")
    try:
        agreement = json.loads(Path(agreement_json).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{agreement_json}: not readable JSON ({err})") from None
    table2 = _read_csv(table2_csv, ["method", "n", "mae", "mae_sd", "mse", "mse_sd", "rmse"])
    table2_true = _read_csv(table2_true_csv, ["method", "n", "mae", "mae_sd", "rmse"])
    cohort = cohort_stats(images_csv, measurements_csv, vertebrae_csv,
                          float(_cfg(config, "fracture_threshold", default=20.0)))
    text, metrics = build_summary(
        config, cohort, split_counts(split_csv), read_triplet_summary(triplet_summary_json), read_table1(table1_csv),
        selected_path.read_text().strip(), table2, table2_true, agreement, str(Path(images_csv).parent))
    write_text(out_md, text)
    stats.write_json(out_metrics, metrics)
    logging.getLogger(__name__).info("summary: %s, metrics: %s", out_md, json.dumps(metrics))
