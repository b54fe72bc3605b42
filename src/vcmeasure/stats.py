"""Statistics of the regression step: Table 2 and the agreement analysis (paper Results, Eqs. 6-8, Fig. 7).

DESIGN §4: per fractured test vertebra (``split == test``, ``fractured == 1``), e = predicted - reference;
MAE = mean |e| ± SD |e|, MSE = mean e² ± SD e², RMSE = √MSE with a 95 % CI from a bootstrap over *subjects*
(several vertebrae of one subject are not independent). SDs are sample SDs (ddof = 1).

Agreement (paper: Pearson r, Bland–Altman, regression line of Fig. 7b; extended here): Pearson r and p
(:func:`scipy.stats.pearsonr`), Bland–Altman bias, limits bias ± 1.96 SD (sample SD, Bland & Altman 1986)
and the share of points inside, the OLS line predicted = intercept + slope · reference
(:class:`statsmodels.api.OLS`), ICC(2,1) and ICC(3,1) (Shrout & Fleiss 1979, two-way ANOVA mean squares),
Genant-grade agreement (weighted kappa, :func:`statsmodels.stats.inter_rater.cohens_kappa`) and the surgical
threshold VC > 40 (:mod:`vcmeasure.measures`).

Every statistic degrades to ``NaN`` (``null`` in JSON) with a ``reason`` when it is undefined: n = 0, n = 1,
constant values. The CI config can leave very few fractured test bodies; the workflow must not crash there.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import measures
from .errors import InputError
from .io import write_csv, write_text
from .seeding import derive_seed

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["triplet_id", "image_id", "subject_id", "split", "model", "predicted", "reference",
                      "value_true", "fractured"]
MEASURE_VC = "vc_anterior"
LOA_SD = 1.96

METHOD_LABELS = {
    "image_processing": "Image processing",
    "resnet50": "ResNet50",
    "densenet121": "DenseNet121",
    "carn": "CARN",
    "mrdn": "MRDN",
}

# Paper Table 2 (mean ± SD, VC in %). DESIGN §7 lists the MAE row and the MRDN column; the rest is the
# paper's own table, shown for completeness.
PAPER_TABLE2 = {
    "image_processing": {"mae": (5.255, 0.929), "mse": (48.467, 31.091), "rmse": (6.962, 1.515)},
    "resnet50": {"mae": (4.825, 1.611), "mse": (45.657, 19.887), "rmse": (6.757, 1.541)},
    "densenet121": {"mae": (4.474, 0.812), "mse": (40.244, 10.020), "rmse": (6.344, 0.751)},
    "carn": {"mae": (3.496, 2.365), "mse": (22.359, 29.021), "rmse": (4.729, 2.934)},
    "mrdn": {"mae": (2.637, 1.872), "mse": (13.985, 24.107), "rmse": (3.739, 2.187)},
}
PAPER_PEARSON_R = 0.946

SUBSETS = {
    "fractured_test": "split == test and fractured == 1 (the Table 2 rows; the paper's 83 test vertebrae)",
    "all_test": "split == test, fractured or not",
}
ICC_FORM = ("ICC(2,1): two-way random effects, absolute agreement, single measurement (Shrout & Fleiss 1979; "
            "McGraw & Wong ICC(A,1)); ICC(3,1), two-way mixed consistency, is given beside it")


# ----------------------------------------------------------------------------------------------- inputs


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def measure_label(measure: str) -> str:
    """How tables name the quantity: 'VC (%)' only for the anterior VC of Eq. 1, otherwise the measure's name."""
    return "VC (%)" if measure == MEASURE_VC else measure


def read_measure(measurements_csv: str | Path) -> str:
    """The dataset's measure (DESIGN §3 measurements.csv ``measure``); one value per dataset."""
    path = Path(measurements_csv)
    if not path.is_file():
        raise InputError(f"{path}: missing")
    try:
        frame = pd.read_csv(path, usecols=["measure"])
    except ValueError as err:
        raise InputError(f"{path}: missing column measure ({err})") from None
    values = sorted(frame["measure"].dropna().astype(str).unique())
    if len(values) > 1:
        raise InputError(f"{path}: several measures in one dataset ({', '.join(values)})")
    return values[0] if values else MEASURE_VC


def _flag(series: pd.Series) -> pd.Series:
    """fractured as 0/1 whatever the CSV held (1/0, 1.0, True/False, empty -> 0)."""
    text = series.astype(str).str.strip().str.lower()
    return text.isin({"1", "1.0", "true", "yes"}).astype(int)


def read_predictions(paths: dict[str, str | Path] | list[str | Path]) -> pd.DataFrame:
    """Concatenate ``predictions.csv`` files (ARCHITECTURE shared formats); method = dict key, else ``model``."""
    items = paths.items() if isinstance(paths, dict) else [(None, p) for p in paths]
    frames = []
    for method, path in items:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: missing")
        try:
            frame = pd.read_csv(path, dtype={"triplet_id": str, "image_id": str, "subject_id": str, "split": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not a readable CSV ({err})") from None
        missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        for col in ("predicted", "reference", "value_true"):
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
        frame["fractured"] = _flag(frame["fractured"])
        frame["method"] = method if method is not None else frame["model"].astype(str)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*PREDICTION_COLUMNS, "method"])
    return pd.concat(frames, ignore_index=True)


def select_subset(frame: pd.DataFrame, subset: str = "fractured_test") -> pd.DataFrame:
    """Rows scored in Table 2 (``fractured_test``) or every test row (``all_test``)."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}")
    mask = frame["split"].astype(str) == "test"
    if subset == "fractured_test":
        mask &= frame["fractured"].astype(int) == 1
    return frame.loc[mask]


def paired_finite(values, other):
    """Pairs with both values finite, as float arrays."""
    a, b = np.asarray(values, dtype=float), np.asarray(other, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size >= 2 else math.nan


# ----------------------------------------------------------------------------------------------- Table 2


def error_metrics(predicted, reference) -> dict:
    """MAE ± SD |e|, MSE ± SD e², RMSE = √MSE and n, e = predicted - reference (paper Eqs. 6-8)."""
    pred, ref = paired_finite(predicted, reference)
    e = pred - ref
    n = int(e.size)
    if n == 0:
        return {"n": 0, "mae": math.nan, "mae_sd": math.nan, "mse": math.nan, "mse_sd": math.nan,
                "rmse": math.nan}
    mse = float(np.mean(e**2))
    return {"n": n, "mae": float(np.mean(np.abs(e))), "mae_sd": _sd(np.abs(e)), "mse": mse,
            "mse_sd": _sd(e**2), "rmse": math.sqrt(mse)}


def bootstrap_rmse_ci(predicted, reference, groups, n_resamples: int = 2000, seed: int = 0,
                      confidence_level: float = 0.95) -> tuple[float, float, str | None]:
    """Percentile CI of the RMSE, resampling *groups* (subjects) with replacement (:func:`scipy.stats.bootstrap`).

    A resample draws as many subjects as there are, with replacement, and pools all their vertebrae; the
    RMSE of the pool is the statistic. Returns ``(low, high, reason)``; ``reason`` explains a NaN interval.
    """
    from scipy.stats import bootstrap

    pred, ref = np.asarray(predicted, dtype=float), np.asarray(reference, dtype=float)
    groups = np.asarray(groups).astype(str)
    keep = np.isfinite(pred) & np.isfinite(ref)
    sq = (pred[keep] - ref[keep]) ** 2
    codes, uniq = pd.factorize(groups[keep], sort=True)
    if uniq.size < 2:
        return math.nan, math.nan, f"bootstrap over subjects needs at least 2 subjects (got {uniq.size})"
    ss = np.bincount(codes, weights=sq, minlength=uniq.size)  # per-subject sum of squared errors
    cnt = np.bincount(codes, minlength=uniq.size).astype(float)

    def rmse_of(idx, axis=-1):
        idx = np.asarray(idx, dtype=np.int64)
        return np.sqrt(ss[idx].sum(axis=axis) / cnt[idx].sum(axis=axis))

    res = bootstrap((np.arange(uniq.size),), rmse_of, n_resamples=int(n_resamples), vectorized=True,
                    confidence_level=confidence_level, method="percentile", rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return low, high, None


def table2(frame: pd.DataFrame, methods: list[str], reference_col: str = "reference", n_resamples: int = 2000,
           seed: int = 0, measure: str = MEASURE_VC) -> pd.DataFrame:
    """Table 2: one row per method on the fractured test vertebrae, the paper's values beside ours."""
    if reference_col not in ("reference", "value_true"):
        raise ValueError(f"reference_col must be reference or value_true, not {reference_col!r}")
    sub = select_subset(frame)
    rows = []
    for method in methods:
        part = sub[sub["method"] == method]
        pred, ref = part["predicted"].to_numpy(float), part[reference_col].to_numpy(float)
        ok = np.isfinite(pred) & np.isfinite(ref)
        metrics = error_metrics(pred, ref)
        low, high, reason = bootstrap_rmse_ci(pred, ref, part["subject_id"], n_resamples,
                                              derive_seed(seed, "rmse_bootstrap", method, reference_col))
        notes = []
        if metrics["n"] == 0:
            notes.append("no fractured test vertebra with a prediction")
        elif metrics["n"] == 1:
            notes.append("n = 1: SDs undefined")
        if reason and metrics["n"] > 0:
            notes.append(reason)
        if int((~ok).sum()):
            notes.append(f"{int((~ok).sum())} without a prediction (method failed), left out")
        paper = PAPER_TABLE2.get(method, {})
        rows.append({
            "method": method, "label": method_label(method), "measure": measure,
            "reference": "value_reader" if reference_col == "reference" else "value_true",
            **metrics, "rmse_ci_low": low, "rmse_ci_high": high,
            "n_subjects": int(part.loc[ok, "subject_id"].nunique()), "n_missing": int((~ok).sum()),
            "paper_mae": paper.get("mae", (math.nan,))[0], "paper_mae_sd": paper.get("mae", (0, math.nan))[1],
            "paper_mse": paper.get("mse", (math.nan,))[0], "paper_mse_sd": paper.get("mse", (0, math.nan))[1],
            "paper_rmse": paper.get("rmse", (math.nan,))[0], "paper_rmse_sd": paper.get("rmse", (0, math.nan))[1],
            "note": "; ".join(notes),
        })
    return pd.DataFrame(rows)


def _fmt(x, digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _pm(mean, sd, digits: int = 3) -> str:
    if mean is None or not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {_fmt(sd, digits)}"


def table2_markdown(table: pd.DataFrame, measure: str, n_resamples: int | None = None) -> str:
    """Markdown of :func:`table2`, naming the measure (never 'VC' for another measure) and the reference."""
    ref = table["reference"].iloc[0] if len(table) else "value_reader"
    unit = measure_label(measure)
    is_vc = measure == MEASURE_VC
    title = (f"Table 2 — error of the automatic {unit if not is_vc else 'VC'} measurement on fractured test "
             f"vertebrae, against `{ref}`")
    out = pd.DataFrame({
        "method": table["label"],
        "n": table["n"],
        "MAE ± SD": [_pm(m, s) for m, s in zip(table["mae"], table["mae_sd"], strict=True)],
        "MSE ± SD": [_pm(m, s) for m, s in zip(table["mse"], table["mse_sd"], strict=True)],
        "RMSE [95 % CI]": [f"{_fmt(r)} [{_fmt(lo)}, {_fmt(hi)}]" for r, lo, hi in
                           zip(table["rmse"], table["rmse_ci_low"], table["rmse_ci_high"], strict=True)],
        "paper MAE ± SD": [_pm(m, s) for m, s in zip(table["paper_mae"], table["paper_mae_sd"], strict=True)],
        "paper MSE ± SD": [_pm(m, s) for m, s in zip(table["paper_mse"], table["paper_mse_sd"], strict=True)],
        "paper RMSE ± SD": [_pm(m, s) for m, s in zip(table["paper_rmse"], table["paper_rmse_sd"], strict=True)],
        "note": table["note"].fillna(""),
    })
    boot = f"{n_resamples} resamples of subjects" if n_resamples else "resampling subjects"
    lines = [
        f"# {title}", "",
        f"Measure: `{measure}` ({unit}). e = predicted − {ref}; MAE = mean |e| ± SD |e|; MSE = mean e² ± SD e²; "
        f"RMSE = √MSE with a 95 % percentile bootstrap CI ({boot}). SDs are sample SDs.", "",
        out.to_markdown(index=False) if len(out) else "_no methods_", "",
    ]
    if is_vc:
        lines.append("Paper columns: Seo et al. 2021, Table 2 (83 fractured test vertebrae; the paper gives RMSE ± SD, "
                     "not a CI).")
    else:
        lines.append(f"Paper columns: Seo et al. 2021, Table 2, which scores anterior vertebral compression; this "
                     f"dataset's measure is `{measure}`, so they are shown for orientation only and are not "
                     f"comparable.")
    return "\n".join(lines) + "\n"


def read_method_predictions(prediction_files: list[str], methods: list[str]) -> pd.DataFrame:
    """predictions.csv files given in the order of ``methods`` (the rules' input order)."""
    if len(prediction_files) != len(methods):
        raise InputError(f"{len(prediction_files)} predictions.csv file(s) for {len(methods)} method(s)")
    return read_predictions(dict(zip(methods, prediction_files, strict=True)))


def write_table2(prediction_files: list[str], measurements_csv: str, methods: list[str], out_csv: str,
                 out_md: str, out_true_csv: str, out_true_md: str, n_resamples: int = 2000, seed: int = 0) -> None:
    """Rule ``table2``: both tables (against value_reader and against value_true), CSV and Markdown."""
    frame = read_method_predictions(prediction_files, methods)
    measure = read_measure(measurements_csv)
    for ref_col, csv_path, md_path in (("reference", out_csv, out_md), ("value_true", out_true_csv, out_true_md)):
        table = table2(frame, methods, ref_col, n_resamples, seed, measure)
        for _, row in table.iterrows():
            log.info("Table 2 vs %s, %s: n=%d MAE=%.3f RMSE=%.3f [%.3f, %.3f] %s", ref_col, row["method"], row["n"],
                     row["mae"], row["rmse"], row["rmse_ci_low"], row["rmse_ci_high"], row["note"])
        write_csv(csv_path, table)
        write_text(md_path, table2_markdown(table, measure, n_resamples))


# ----------------------------------------------------------------------------------------------- agreement


def _constant(x: np.ndarray) -> bool:
    return x.size > 0 and bool(np.all(x == x[0]))


def pearson(predicted, reference) -> dict:
    """Pearson r and two-sided p (:func:`scipy.stats.pearsonr`); NaN with a reason when undefined."""
    from scipy.stats import pearsonr

    pred, ref = paired_finite(predicted, reference)
    if pred.size < 2:
        return {"r": math.nan, "p": math.nan, "reason": f"needs at least 2 pairs (n = {pred.size})"}
    if _constant(pred) or _constant(ref):
        return {"r": math.nan, "p": math.nan, "reason": "a constant variable has no correlation"}
    res = pearsonr(pred, ref)
    return {"r": float(res.statistic), "p": float(res.pvalue), "reason": None}


def bland_altman(predicted, reference, sd_limit: float = LOA_SD, ddof: int = 1) -> dict:
    """Bland–Altman: bias = mean(pred - ref), limits bias ± sd_limit·SD, share of differences inside the limits.

    ``ddof=1`` (sample SD) follows Bland & Altman; ``ddof=0`` matches statsmodels' ``mean_diff_plot``.
    """
    pred, ref = paired_finite(predicted, reference)
    d = pred - ref
    out = {"n": int(d.size), "bias": math.nan, "sd": math.nan, "loa_low": math.nan, "loa_high": math.nan,
           "share_inside": math.nan, "sd_limit": sd_limit, "reason": None}
    if d.size == 0:
        out["reason"] = "no pairs"
        return out
    out["bias"] = float(np.mean(d))
    if d.size <= ddof:
        out["reason"] = f"SD needs more than {ddof} pair(s)"
        return out
    sd = float(np.std(d, ddof=ddof))
    low, high = out["bias"] - sd_limit * sd, out["bias"] + sd_limit * sd
    out.update(sd=sd, loa_low=low, loa_high=high, share_inside=float(np.mean((d >= low) & (d <= high))))
    return out


def ols_line(predicted, reference) -> dict:
    """OLS predicted = intercept + slope · reference (:class:`statsmodels.api.OLS`), as in Fig. 7b."""
    import statsmodels.api as sm

    pred, ref = paired_finite(predicted, reference)
    out = {"slope": math.nan, "intercept": math.nan, "r2": math.nan, "slope_p": math.nan, "reason": None}
    if pred.size < 2:
        out["reason"] = f"needs at least 2 pairs (n = {pred.size})"
        return out
    if _constant(ref):
        out["reason"] = "reference is constant: slope undefined"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n = 2 fits exactly: statsmodels warns about zero residual df
        fit = sm.OLS(pred, sm.add_constant(ref, has_constant="add")).fit()
        out.update(intercept=float(fit.params[0]), slope=float(fit.params[1]),
                   r2=float(fit.rsquared) if not _constant(pred) else math.nan,
                   slope_p=float(fit.pvalues[1]) if pred.size > 2 else math.nan)
    if _constant(pred):
        out["reason"] = "predictions are constant: R² undefined"
    return out


def icc(ratings) -> dict:
    """ICC(2,1) and ICC(3,1) of an (n targets × k raters) array from two-way ANOVA mean squares.

    Shrout & Fleiss (1979): with MSR (targets), MSC (raters), MSE (residual),
    ICC(2,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n);  ICC(3,1) = (MSR - MSE) / (MSR + (k-1) MSE).
    """
    x = np.asarray(ratings, dtype=float)
    x = x[np.all(np.isfinite(x), axis=1)] if x.ndim == 2 else x
    out = {"icc2_1": math.nan, "icc3_1": math.nan, "n": int(x.shape[0]) if x.ndim == 2 else 0, "reason": None}
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        out["reason"] = f"needs at least 2 targets rated by 2 raters (n = {out['n']})"
        return out
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * np.sum((x.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((x.mean(axis=0) - grand) ** 2)
    ss_err = np.sum((x - grand) ** 2) - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    den2 = msr + (k - 1) * mse + k * (msc - mse) / n
    den3 = msr + (k - 1) * mse
    if den2 <= 0 or den3 <= 0:
        out["reason"] = "no variance between targets or raters: ICC undefined"
        return out
    out.update(icc2_1=float((msr - mse) / den2), icc3_1=float((msr - mse) / den3),
               ms_rows=float(msr), ms_cols=float(msc), ms_error=float(mse))
    return out


def genant_agreement(predicted, reference) -> dict:
    """Genant grades (0-3) of both, their confusion table and weighted kappas (statsmodels ``cohens_kappa``)."""
    from statsmodels.stats.inter_rater import cohens_kappa

    pred, ref = paired_finite(predicted, reference)
    table = np.zeros((4, 4), dtype=int)  # fixed 4 grades so the table is square whatever grades occur
    np.add.at(table, (np.asarray(measures.genant_grade(ref), int).reshape(-1),
                      np.asarray(measures.genant_grade(pred), int).reshape(-1)), 1)
    out = {"confusion_ref_rows_pred_cols": table.tolist(), "exact_agreement": math.nan, "kappa_linear": math.nan,
           "kappa_quadratic": math.nan, "reason": None}
    n = int(table.sum())
    if n == 0:
        out["reason"] = "no pairs"
        return out
    out["exact_agreement"] = float(np.trace(table) / n)
    prob_exp = np.outer(table.sum(1), table.sum(0)) / n**2
    weights = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    if float((weights * prob_exp).sum()) == 0.0:
        out["reason"] = "a single grade in both ratings: chance agreement is total, kappa undefined"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["kappa_linear"] = float(cohens_kappa(table, wt="linear", return_results=False))
        out["kappa_quadratic"] = float(cohens_kappa(table, wt="quadratic", return_results=False))
    return out


def surgical_agreement(predicted, reference) -> dict:
    """Surgical flag VC > 40 (measures.is_surgical) from the prediction, scored against the reference's flag."""
    pred, ref = paired_finite(predicted, reference)
    p = np.asarray(measures.is_surgical(pred), bool).reshape(-1)
    r = np.asarray(measures.is_surgical(ref), bool).reshape(-1)
    tp, fn = int(np.sum(p & r)), int(np.sum(~p & r))
    tn, fp = int(np.sum(~p & ~r)), int(np.sum(p & ~r))
    reasons = []
    if tp + fn == 0:
        reasons.append("no reference value above the threshold: sensitivity undefined")
    if tn + fp == 0:
        reasons.append("no reference value at or below the threshold: specificity undefined")
    return {"threshold": measures.SURGICAL_THRESHOLD, "tp": tp, "fn": fn, "tn": tn, "fp": fp,
            "sensitivity": tp / (tp + fn) if tp + fn else math.nan,
            "specificity": tn / (tn + fp) if tn + fp else math.nan,
            "reason": "; ".join(reasons) or None}


def agreement(predicted, reference, measure: str = MEASURE_VC) -> dict:
    """Every agreement statistic of one method on one subset (see module docstring)."""
    pred, ref = paired_finite(predicted, reference)
    out = {
        "n": int(pred.size),
        "pearson": pearson(pred, ref),
        "bland_altman": bland_altman(pred, ref),
        "ols": ols_line(pred, ref),
        "icc": icc(np.column_stack([pred, ref]) if pred.size else np.zeros((0, 2))),
    }
    if measure == MEASURE_VC:
        out["genant"] = genant_agreement(pred, ref)
        out["surgical"] = surgical_agreement(pred, ref)
    else:
        why = f"measure {measure} is not VC: Genant grades and the surgical threshold are defined on VC only"
        out["genant"] = {"reason": why}
        out["surgical"] = {"reason": why}
    return out


def agreement_report(frame: pd.DataFrame, methods: list[str], measure: str = MEASURE_VC) -> dict:
    """agreement.json content: per method and subset, against the reference (value_reader)."""
    report = {"measure": measure, "reference": "value_reader", "subsets": SUBSETS, "icc_form": ICC_FORM,
              "limits_of_agreement": f"bias ± {LOA_SD} sample SD", "methods": {}}
    for method in methods:
        entry = {"label": method_label(method)}
        for subset in SUBSETS:
            part = select_subset(frame, subset)
            part = part[part["method"] == method]
            entry[subset] = agreement(part["predicted"], part["reference"], measure)
        report["methods"][method] = entry
    return report


def to_json_safe(obj):
    """NaN / inf -> None and NumPy scalars -> Python, so the JSON is valid (``dvc metrics`` reads it)."""
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(to_json_safe(obj), indent=2, allow_nan=False) + "\n")


def bland_altman_points(frame: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per fractured test vertebra and method: mean and difference (predicted - reference), for `dvc plots`."""
    sub = select_subset(frame, "fractured_test")
    sub = sub[sub["model"].isin(methods)]
    out = pd.DataFrame({
        "method": sub["model"], "triplet_id": sub["triplet_id"], "reference": sub["reference"],
        "predicted": sub["predicted"], "mean": (sub["predicted"] + sub["reference"]) / 2.0,
        "difference": sub["predicted"] - sub["reference"],
    })
    return out.dropna(subset=["difference"]).sort_values(["method", "triplet_id"], kind="stable")


def write_agreement(prediction_files: list[str], measurements_csv: str, methods: list[str], out_json: str,
                    out_points: str | None = None) -> None:
    """Rule ``agreement``: results/stats/agreement.json (and the Bland–Altman points as CSV)."""
    frame = read_method_predictions(prediction_files, methods)
    if out_points:
        write_csv(out_points, bland_altman_points(frame, methods))
    report = agreement_report(frame, methods, read_measure(measurements_csv))
    for method, entry in report["methods"].items():
        fr = entry["fractured_test"]
        log.info("agreement %s: n=%d r=%s ICC(2,1)=%s", method, fr["n"], fr["pearson"]["r"], fr["icc"]["icc2_1"])
    write_json(out_json, report)
