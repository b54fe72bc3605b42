"""results/summary.md and results/metrics.json (vcmeasure.summary); DESIGN §6, §7."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from vcmeasure import stats, summary
from vcmeasure.errors import InputError

METHODS = ["image_processing", "mrdn", "resnet50", "densenet121", "carn"]

# Every number of DESIGN §7, as the summary must print it.
PAPER_NUMBERS = [
    "387", "300", "T8–L5", "0.01", "59.06", "8.61", "9.30", "323", "64", "83", "1366", "304", "1134", "945", "189",
    "0.903 ± 0.090", "0.920 ± 0.068", "0.923 ± 0.073", "0.934 ± 0.086", "0.997 ± 0.002", "0.987 ± 0.005",
    "5.255", "4.825", "4.474", "3.496", "2.637 ± 1.872", "13.985 ± 24.107", "3.739 ± 2.187", "0.946",
]

CONFIG = {
    "seed": 3, "fracture_threshold": 20,
    "data": {"source": "synthetic", "name": "demo"},
    "synthetic": {"preset": "quick", "reader_noise_sd": 1.0},
    "preprocess": {"image_size": 128},
    "segmentation": {"architectures": ["unet", "resunet", "r2unet"], "epochs": 3, "batch_size": 5,
                     "learning_rate": 0.001, "base_filters": 8},
    "triplets": {"window_size": 64, "train_source": "predicted", "eval_source": "predicted"},
    "regression": {"models": ["mrdn", "resnet50", "densenet121", "carn"], "epochs": 4, "batch_size": 8,
                   "learning_rate": 0.01, "mrdn_filters": 8},
    "stats": {"bootstrap": 50},
}


def _make_run(tmp_path, measure="vc_anterior", n_test=12, with_mrdn=True):
    """The files the summary rule reads, small and consistent."""
    rng = np.random.default_rng(0)
    ds = tmp_path / "data"
    ds.mkdir()
    images = pd.DataFrame({"image_id": [f"i{k}" for k in range(6)], "subject_id": ["a", "a", "b", "c", "d", "e"]})
    images.to_csv(ds / "images.csv", index=False)
    meas = pd.DataFrame({"image_id": np.repeat(images["image_id"], 3), "label": np.tile([2, 3, 4], 6),
                         "measure": measure, "value_true": 0.0,
                         "value_reader": np.r_[np.linspace(1.5, 45.25, 17), 33.0]})
    meas["genant_grade"] = 0
    meas.to_csv(ds / "measurements.csv", index=False)
    vert = meas[["image_id", "label"]].copy()
    vert["level"] = np.tile(["T11", "T12", "L1"], 6)
    # the dataset's flag wins over the threshold (DESIGN §4): T11 bodies are never flagged
    vert["fractured"] = ((meas["value_reader"].to_numpy() >= 20) & (vert["level"] != "T11")).astype(int)
    vert.to_csv(ds / "vertebrae.csv", index=False)
    split = images.assign(split=["train", "train", "val", "train", "test", "test"])
    split.to_csv(tmp_path / "split.csv", index=False)
    (tmp_path / "triplets.json").write_text(json.dumps({
        "images_total": 6, "images_failed": 1, "windows_generated": 9, "windows_accepted": 7,
        "windows_by_split": {"train": 4, "val": 1, "test": 2}, "fractured_test": n_test}))
    pd.DataFrame({"architecture": ["U-Net", "ResU-Net", "R2U-Net"],
                  **{f"{m}_{s}": [0.81, 0.82, 0.8333] if s == "mean" else [0.01, 0.02, 0.03]
                     for m in ("sensitivity", "specificity", "accuracy", "dsc") for s in ("mean", "sd")},
                  "detection_rate_mean": 0.9, "hd95_mean": 3.0, "n_images": 2}).to_csv(tmp_path / "t1.csv", index=False)
    (tmp_path / "selected.txt").write_text("r2unet\n")
    methods = METHODS if with_mrdn else ["image_processing", "carn"]
    frames = []
    for method in methods:
        ref = rng.uniform(20, 60, n_test)
        frames.append(pd.DataFrame({
            "triplet_id": [f"t{i}" for i in range(n_test)], "image_id": "i4",
            "subject_id": [f"s{i % 3}" for i in range(n_test)], "split": "test", "model": method,
            "predicted": ref + rng.normal(0, 2, n_test), "reference": ref, "value_true": ref, "fractured": 1,
            "method": method}))
    frame = pd.concat(frames, ignore_index=True)
    stats.table2(frame, methods, n_resamples=50, seed=1, measure=measure).to_csv(tmp_path / "t2.csv", index=False)
    stats.table2(frame, methods, "value_true", 50, 1, measure).to_csv(tmp_path / "t2t.csv", index=False)
    stats.write_json(tmp_path / "agreement.json", stats.agreement_report(frame, methods, measure))
    out_md, out_metrics = tmp_path / "summary.md", tmp_path / "metrics.json"
    summary.write_summary(tmp_path / "t2.csv", tmp_path / "t2t.csv", tmp_path / "agreement.json", tmp_path / "t1.csv",
                          tmp_path / "selected.txt", tmp_path / "split.csv", tmp_path / "triplets.json",
                          ds / "images.csv", ds / "measurements.csv", ds / "vertebrae.csv", CONFIG, out_md,
                          out_metrics)
    return out_md.read_text(), json.loads(out_metrics.read_text()), frame


def _row(md, label):
    """The 'this run' cell of the paper-vs-run row starting with ``label``."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0].startswith(label):
            return cells[2]
    raise AssertionError(f"no row {label!r}")


def test_summary_has_every_paper_number_and_ours(tmp_path):
    md, metrics, frame = _make_run(tmp_path)
    for number in PAPER_NUMBERS:
        assert number in md, number
    assert _row(md, "Images") == "6" and _row(md, "Subjects") == "5"
    assert _row(md, "Levels of the fractured bodies") == "T12–L1"
    assert _row(md, "VC (%) min / max") == "1.50 / 45.25"
    assert _row(md, "Split train / test") == "4 / 2 (validation 1)"
    assert _row(md, "Images failed") == "1" and _row(md, "Triplets generated") == "9 (5)"
    assert _row(md, "Triplets used train / test") == "5 / 2"
    assert _row(md, "Table 1 DSC, R2U-Net") == "0.833 ± 0.030"
    assert _row(md, "Selected segmentation") == "R2U-Net"
    mrdn = frame[frame["method"] == "mrdn"]
    mae = np.mean(np.abs(mrdn["predicted"] - mrdn["reference"]))
    assert _row(md, "Table 2 MAE ± SD, MRDN").startswith(f"{mae:.3f} ± ")
    r = np.corrcoef(mrdn["predicted"], mrdn["reference"])[0, 1]
    assert _row(md, "Pearson r, MRDN").startswith(f"{r:.3f}")
    # config and the plain-language notes
    assert "demo" in md and "Synthetic data" in md and "Subject-grouped split" in md and "Smaller scale" in md
    assert "| image size (px)" in md and "128" in md
    # metrics.json: the same figures, numbers only
    assert metrics["mae"]["mrdn"] == pytest.approx(mae) and metrics["pearson_r_mrdn"] == pytest.approx(r)
    assert metrics["dsc"]["r2unet"] == pytest.approx(0.8333) and metrics["n"]["carn"] == 12
    assert set(metrics["rmse"]) == set(METHODS)


def test_summary_other_measure_never_says_vc(tmp_path):
    md, _, _ = _make_run(tmp_path, measure="ap_left_height_ratio")
    assert not re.search(r"\bVC\b", md)
    assert "`ap_left_height_ratio` min / max" in md and "Different measure" in md


def test_summary_survives_no_test_vertebrae(tmp_path):
    md, metrics, _ = _make_run(tmp_path, n_test=0, with_mrdn=False)
    assert "n/a" in md and "Few test vertebrae" in md
    assert metrics["mae"]["carn"] is None and metrics["pearson_r_carn"] is None
    assert _row(md, "Table 2 MAE ± SD, MRDN") == "not run"


def test_cohort_stats_and_bad_inputs(tmp_path):
    _make_run(tmp_path)
    ds = tmp_path / "data"
    c = summary.cohort_stats(ds / "images.csv", ds / "measurements.csv", ds / "vertebrae.csv")
    values = pd.read_csv(ds / "measurements.csv")["value_reader"]
    assert c["value_mean"] == pytest.approx(values.mean()) and c["value_sd"] == pytest.approx(values.std())
    levels = pd.read_csv(ds / "vertebrae.csv")["level"]
    assert c["fractured_bodies"] == int(((values >= 20) & (levels != "T11")).sum())
    (tmp_path / "bad.json").write_text('{"images_total": 3}')
    with pytest.raises(InputError, match=r"bad\.json: missing key"):
        summary.read_triplet_summary(tmp_path / "bad.json")
    with pytest.raises(InputError, match="architecture"):
        pd.DataFrame({"x": [1]}).to_csv(tmp_path / "t1bad.csv", index=False)
        summary.read_table1(tmp_path / "t1bad.csv")
    no_vert = summary.cohort_stats(ds / "images.csv", ds / "measurements.csv")  # threshold only, no levels
    assert no_vert["levels"] == "n/a" and no_vert["fractured_bodies"] == int((values >= 20).sum())


@pytest.mark.slow
def test_stats_rules_and_report(tmp_path, root, bin_dir):
    """The four rules, their scripts and the report, on fixture inputs (only common.smk + stats.smk included)."""
    import shutil
    import subprocess

    fx = tmp_path / "fixture"
    fx.mkdir()
    _make_run(fx)
    work = tmp_path / "wf"
    ds = work / "data/raw/synthetic"
    ds.mkdir(parents=True)
    for name in ("images.csv", "measurements.csv", "vertebrae.csv"):
        shutil.copy(fx / "data" / name, ds / name)
    placed = {"split.csv": "results/split/split.csv", "triplets.json": "results/triplets/predicted/summary.json",
              "t1.csv": "results/tables/table1_segmentation.csv",
              "selected.txt": "results/segmentation/selected_architecture.txt"}
    for src, dst in placed.items():
        (work / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fx / src, work / dst)
    rng = np.random.default_rng(1)
    for method in ["image_processing", "mrdn", "resnet50", "densenet121", "carn"]:
        ref = rng.uniform(20, 60, 9)
        out = work / f"results/regression/{method}/predictions.csv"
        out.parent.mkdir(parents=True)
        pd.DataFrame({"triplet_id": [f"t{i}" for i in range(9)], "image_id": "i4",
                      "subject_id": [f"s{i % 3}" for i in range(9)], "split": "test", "model": method,
                      "predicted": ref + rng.normal(0, 2, 9), "reference": ref, "value_true": ref,
                      "fractured": 1}).to_csv(out, index=False)
    (work / "Snakefile").write_text(
        f'configfile: "{root}/config/config.yaml"\nreport: "{root}/workflow/report/workflow.rst"\n'
        f'include: "{root}/workflow/rules/common.smk"\ninclude: "{root}/workflow/rules/stats.smk"\n')
    targets = ["results/summary.md", "results/metrics.json", "results/figures/fig7_agreement.png"]
    (work / "extra.yaml").write_text("stats:\n  bootstrap: 20\n")
    cmd = [str(bin_dir / "snakemake"), "--cores", "2", *targets, "--configfile", "extra.yaml"]
    run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    md = (work / "results/summary.md").read_text()
    assert "2.637 ± 1.872" in md and "| dataset" in md
    assert json.loads((work / "results/metrics.json").read_text())["n"]["mrdn"] == 9
    assert (work / "results/tables/table2_regression_true.md").is_file()
    assert (work / "results/stats/agreement.json").is_file() and (work / "logs/table2/table2.log").is_file()
    rep = subprocess.run([*cmd, "--report", "report.html"], cwd=work, capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0 and (work / "report.html").stat().st_size > 0, rep.stderr[-3000:]
