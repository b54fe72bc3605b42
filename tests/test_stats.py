"""Table 2 and agreement statistics (vcmeasure.stats), Fig. 7 (vcmeasure.agreement_plots); DESIGN §4, §6."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from vcmeasure import agreement_plots, stats
from vcmeasure.errors import InputError

METHODS = ["image_processing", "mrdn"]


def _predictions(n_subjects=8, per_subject=4, noise=3.0, seed=0, method="mrdn"):
    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    ref = rng.uniform(20, 60, n)
    return pd.DataFrame({
        "triplet_id": [f"t{i}" for i in range(n)], "image_id": [f"img{i // 2}" for i in range(n)],
        "subject_id": [f"s{i // per_subject}" for i in range(n)], "split": "test", "model": method,
        "predicted": ref + rng.normal(0, noise, n), "reference": ref, "value_true": ref + rng.normal(0, 1, n),
        "fractured": 1,
    })


def _write_inputs(tmp_path, frames: dict, measure="vc_anterior"):
    files = []
    for method, frame in frames.items():
        path = tmp_path / method / "predictions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        files.append(str(path))
    meas = tmp_path / "measurements.csv"
    pd.DataFrame({"image_id": ["a"], "label": [2], "measure": [measure], "value_true": [30.0],
                  "value_reader": [31.0], "genant_grade": [2]}).to_csv(meas, index=False)
    return files, str(meas)


# --------------------------------------------------------------------------------------- Table 2 metrics


def test_error_metrics_hand_computed():
    m = stats.error_metrics([1, 2, 3], [0, 0, 5])  # e = 1, 2, -2
    assert m["n"] == 3
    assert m["mae"] == pytest.approx(5 / 3)
    assert m["mae_sd"] == pytest.approx(math.sqrt(1 / 3))  # sample SD of 1, 2, 2
    assert m["mse"] == pytest.approx(3.0)
    assert m["mse_sd"] == pytest.approx(math.sqrt(3.0))  # sample SD of 1, 4, 4
    assert m["rmse"] == pytest.approx(math.sqrt(3.0))


def test_error_metrics_n0_n1_and_missing():
    m0 = stats.error_metrics([], [])
    assert m0["n"] == 0 and math.isnan(m0["mae"]) and math.isnan(m0["rmse"])
    m1 = stats.error_metrics([5.0, np.nan], [3.0, 4.0])  # the NaN prediction is dropped
    assert m1["n"] == 1 and m1["mae"] == 2.0 and m1["rmse"] == 2.0 and math.isnan(m1["mae_sd"])


def test_bootstrap_seeded():
    f = _predictions()
    args = (f["predicted"], f["reference"], f["subject_id"], 300)
    a, b = stats.bootstrap_rmse_ci(*args, seed=7), stats.bootstrap_rmse_ci(*args, seed=7)
    c = stats.bootstrap_rmse_ci(*args, seed=8)
    assert a == b
    assert a[:2] != c[:2]
    rmse = stats.error_metrics(f["predicted"], f["reference"])["rmse"]
    assert a[0] < rmse < a[1]


def test_bootstrap_resamples_subjects_not_rows():
    # subject A: 10 perfect vertebrae; subject B: one vertebra 10 off. Resampling the two subjects gives
    # RMSE 0 ({A, A}), sqrt(100/11) ({A, B}) or 10 ({B, B}, a quarter of resamples) -> upper bound 10.
    pred = np.r_[np.zeros(10), 10.0]
    ref = np.zeros(11)
    groups = ["A"] * 10 + ["B"]
    low, high, reason = stats.bootstrap_rmse_ci(pred, ref, groups, n_resamples=2000, seed=1)
    assert reason is None
    assert low == pytest.approx(0.0) and high == pytest.approx(10.0)
    # resampling rows instead: B's row rarely appears 11 times, the upper bound stays far below 10
    rows = sps.bootstrap(((pred - ref) ** 2,), lambda x, axis=-1: np.sqrt(np.mean(x, axis=axis)), n_resamples=2000,
                         vectorized=True, method="percentile", rng=np.random.default_rng(1))
    assert rows.confidence_interval.high < 8.0


def test_bootstrap_needs_two_subjects():
    low, high, reason = stats.bootstrap_rmse_ci([1, 2, 3], [0, 0, 0], ["s1"] * 3, 100, 0)
    assert math.isnan(low) and math.isnan(high) and "2 subjects" in reason


def test_table2_scores_only_fractured_test_rows():
    f = _predictions(seed=3)
    junk = f.copy()
    junk["predicted"] += 100.0  # would dominate the errors if included
    train, normal = junk.assign(split="train"), junk.assign(fractured=0)
    frame = pd.concat([f, train, normal]).assign(method="mrdn")
    t = stats.table2(frame, ["mrdn"], n_resamples=100, seed=0)
    expected = stats.error_metrics(f["predicted"], f["reference"])
    row = t.iloc[0]
    assert row["n"] == len(f) and row["n_subjects"] == f["subject_id"].nunique()
    assert row["mae"] == pytest.approx(expected["mae"]) and row["rmse"] == pytest.approx(expected["rmse"])
    assert row["paper_mae"] == 2.637 and row["paper_mse_sd"] == 24.107
    t_true = stats.table2(frame, ["mrdn"], reference_col="value_true", n_resamples=100, seed=0)
    assert t_true.iloc[0]["mae"] == pytest.approx(np.mean(np.abs(f["predicted"] - f["value_true"])))


def test_table2_empty_and_single(tmp_path):
    one = _predictions(n_subjects=1, per_subject=1)
    none = _predictions(method="image_processing").assign(fractured=0)
    files, meas = _write_inputs(tmp_path, {"image_processing": none, "mrdn": one})
    out = {k: tmp_path / f"{k}" for k in ("csv", "md", "tcsv", "tmd")}
    stats.write_table2(files, meas, METHODS, out["csv"], out["md"], out["tcsv"], out["tmd"], n_resamples=50, seed=1)
    t = pd.read_csv(out["csv"]).set_index("method")
    assert t.loc["image_processing", "n"] == 0 and np.isnan(t.loc["image_processing", "mae"])
    assert "no fractured test vertebra" in t.loc["image_processing", "note"]
    assert t.loc["mrdn", "n"] == 1 and np.isnan(t.loc["mrdn", "rmse_ci_low"])
    md = out["md"].read_text()
    assert "n/a" in md and "2.637 ± 1.872" in md and "value_reader" in md
    assert "value_true" in out["tmd"].read_text()


def test_table2_names_other_measure(tmp_path):
    files, meas = _write_inputs(tmp_path, {"image_processing": _predictions(method="image_processing"),
                                           "mrdn": _predictions()}, measure="ap_left_height_ratio")
    out = [tmp_path / n for n in ("a.csv", "a.md", "b.csv", "b.md")]
    stats.write_table2(files, meas, METHODS, *out, n_resamples=50, seed=1)
    for md in (out[1], out[3]):
        text = md.read_text()
        assert "ap_left_height_ratio" in text and "VC" not in text
    assert set(pd.read_csv(out[0])["measure"]) == {"ap_left_height_ratio"}


def test_read_predictions_names_bad_file(tmp_path):
    bad = tmp_path / "predictions.csv"
    pd.DataFrame({"triplet_id": ["t"], "predicted": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"predictions\.csv: missing column"):
        stats.read_predictions({"mrdn": bad})
    with pytest.raises(InputError, match="missing"):
        stats.read_predictions({"mrdn": tmp_path / "nope.csv"})


# --------------------------------------------------------------------------------------- agreement


def test_pearson_against_t_distribution():
    f = _predictions(seed=5)
    res = stats.pearson(f["predicted"], f["reference"])
    r = np.corrcoef(f["predicted"], f["reference"])[0, 1]
    n = len(f)
    t = r * math.sqrt((n - 2) / (1 - r * r))
    assert res["r"] == pytest.approx(r)
    assert res["p"] == pytest.approx(2 * sps.t.sf(abs(t), n - 2), rel=1e-6)
    assert stats.pearson([1, 2, 3], [4, 4, 4])["reason"]
    assert math.isnan(stats.pearson([1], [2])["r"])


def test_bland_altman_matches_statsmodels_and_counts_outliers():
    import matplotlib.pyplot as plt
    from statsmodels.graphics.agreement import mean_diff_plot

    f = _predictions(seed=2)
    ba0 = stats.bland_altman(f["predicted"], f["reference"], ddof=0)
    fig, ax = plt.subplots()
    mean_diff_plot(f["predicted"].to_numpy(), f["reference"].to_numpy(), ax=ax)
    drawn = sorted(line.get_ydata()[0] for line in ax.lines)
    plt.close(fig)
    assert drawn == pytest.approx(sorted([ba0["loa_low"], ba0["bias"], ba0["loa_high"]]))
    # sample SD (default): 19 zeros and one 100 -> mean 5, SD sqrt(500), the outlier is outside
    ba = stats.bland_altman(np.r_[np.zeros(19), 100.0], np.zeros(20))
    assert ba["bias"] == pytest.approx(5.0) and ba["sd"] == pytest.approx(math.sqrt(500))
    assert ba["loa_high"] == pytest.approx(5 + 1.96 * math.sqrt(500)) and ba["share_inside"] == pytest.approx(0.95)


def test_ols_line_matches_polyfit():
    f = _predictions(seed=4)
    fit = stats.ols_line(f["predicted"], f["reference"])
    slope, intercept = np.polyfit(f["reference"], f["predicted"], 1)
    assert fit["slope"] == pytest.approx(slope) and fit["intercept"] == pytest.approx(intercept)
    assert fit["r2"] == pytest.approx(np.corrcoef(f["predicted"], f["reference"])[0, 1] ** 2)
    assert stats.ols_line([1, 2], [3, 3])["reason"]  # constant reference


def test_icc_shrout_fleiss_example_and_anova():
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    # Shrout & Fleiss (1979), Table 2: six targets, four judges; published ICC(2,1) = .29, ICC(3,1) = .71
    x = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
    res = stats.icc(x)
    assert round(res["icc2_1"], 2) == 0.29 and round(res["icc3_1"], 2) == 0.71
    long = pd.DataFrame([(i, j, x[i, j]) for i in range(6) for j in range(4)], columns=["target", "rater", "y"])
    table = anova_lm(smf.ols("y ~ C(target) + C(rater)", data=long).fit())
    ms = table["sum_sq"] / table["df"]
    assert res["ms_rows"] == pytest.approx(ms["C(target)"]) and res["ms_cols"] == pytest.approx(ms["C(rater)"])
    assert res["ms_error"] == pytest.approx(ms["Residual"])
    assert stats.icc(np.ones((5, 2)))["reason"] and stats.icc(np.zeros((1, 2)))["reason"]


def test_genant_weighted_kappa_hand_computed():
    ref = [10, 22, 30, 45, 50, 26, 21, 5]    # grades 0 1 2 3 3 2 1 0
    pred = [12, 27, 30, 38, 55, 26, 15, 22]  # grades 0 2 2 2 3 2 0 1
    g = stats.genant_agreement(pred, ref)
    table = np.array(g["confusion_ref_rows_pred_cols"], float)
    assert table.sum() == 8 and np.trace(table) == 4 and g["exact_agreement"] == 0.5
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    i, j = np.indices((4, 4))
    for key, w in (("kappa_linear", np.abs(i - j) / 3), ("kappa_quadratic", (i - j) ** 2 / 9)):
        assert g[key] == pytest.approx(1 - (w * table).sum() / (w * expected).sum())
    assert stats.genant_agreement([30, 31], [30, 32])["reason"]  # one grade only: kappa undefined


def test_surgical_threshold():
    s = stats.surgical_agreement([45, 41, 39, 40, 50], [50, 40, 38, 42, 45])  # ref flags: T F F T T
    assert (s["tp"], s["fn"], s["tn"], s["fp"]) == (2, 1, 1, 1)
    assert s["sensitivity"] == pytest.approx(2 / 3) and s["specificity"] == pytest.approx(0.5)
    assert math.isnan(stats.surgical_agreement([10], [10])["sensitivity"])


@pytest.mark.parametrize("n", [0, 1])
def test_agreement_json_small_n(tmp_path, n):
    f = _predictions(n_subjects=1, per_subject=max(n, 1)).iloc[:n]
    files, meas = _write_inputs(tmp_path, {"image_processing": f.assign(model="image_processing"), "mrdn": f})
    out = tmp_path / "agreement.json"
    stats.write_agreement(files, meas, METHODS, out)
    data = json.loads(out.read_text())  # strict JSON: NaN became null
    entry = data["methods"]["mrdn"]["fractured_test"]
    assert entry["n"] == n and entry["pearson"]["r"] is None and entry["pearson"]["reason"]
    assert entry["icc"]["icc2_1"] is None and "ICC(2,1)" in data["icc_form"]


def test_agreement_constant_and_other_measure():
    a = stats.agreement(np.full(6, 30.0), np.full(6, 30.0))
    assert math.isnan(a["pearson"]["r"]) and a["bland_altman"]["bias"] == 0.0 and a["ols"]["reason"]
    other = stats.agreement([0.1, 0.2, 0.3], [0.1, 0.25, 0.3], measure="ap_left_height_ratio")
    assert "not VC" in other["genant"]["reason"] and "kappa_linear" not in other["genant"]


# --------------------------------------------------------------------------------------- Figure 7


def test_figure7_writes_png_also_without_data(tmp_path):
    frames = {"image_processing": _predictions(method="image_processing", seed=1), "mrdn": _predictions(seed=2)}
    files, meas = _write_inputs(tmp_path, frames)
    out = tmp_path / "fig7.png"
    agreement_plots.write_figure7(files, meas, METHODS, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = {m: f.iloc[:0] for m, f in frames.items()}
    files, meas = _write_inputs(tmp_path / "empty", empty)
    agreement_plots.write_figure7(files, meas, METHODS, tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0
    assert agreement_plots.headline_method(["image_processing", "carn"]) == "carn"
