"""End-to-end: the whole workflow on config/tiny.yaml (run once through `dvc repro`, shared with test_dvc)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BIN = Path(sys.executable).parent

FINAL = [
    "data/raw/synthetic/images.csv",
    "results/preprocessed/transforms.csv",
    "results/split/split.csv",
    "results/tables/table1_segmentation.csv",
    "results/tables/table1_segmentation.md",
    "results/segmentation/selected_architecture.txt",
    "results/tables/table2_regression.csv",
    "results/tables/table2_regression.md",
    "results/tables/table2_regression_true.csv",
    "results/stats/agreement.json",
    "results/figures/fig3_triplets.png",
    "results/figures/fig5_vertices.png",
    "results/figures/fig6_segmentation.png",
    "results/figures/fig7_agreement.png",
    "results/figures/synthetic_examples.png",
    "results/summary.md",
    "results/metrics.json",
]

pytestmark = pytest.mark.slow


def test_every_result_is_written(tiny_run):
    missing = [f for f in FINAL if not (tiny_run / f).is_file()]
    assert not missing, missing
    for f in FINAL:
        if f.endswith(".png"):
            assert (tiny_run / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f


def test_tables_cover_every_method(tiny_run):
    t1 = pd.read_csv(tiny_run / "results/tables/table1_segmentation.csv")
    assert set(t1["architecture"]) == {"unet", "resunet", "r2unet"}
    assert t1["dsc_mean"].between(0, 1).all()
    selected = (tiny_run / "results/segmentation/selected_architecture.txt").read_text().strip()
    assert selected == t1.sort_values("dsc_mean", ascending=False, kind="stable")["architecture"].iloc[0]
    t2 = pd.read_csv(tiny_run / "results/tables/table2_regression.csv")
    methods = set(t2.iloc[:, 0])
    assert {"image_processing", "mrdn", "resnet50", "densenet121", "carn"} <= methods
    for model in ["mrdn", "resnet50", "densenet121", "carn"]:
        pred = pd.read_csv(tiny_run / f"results/regression/{model}/predictions.csv")
        assert len(pred) > 0 and pred["predicted"].notna().all()
        assert set(pred["model"]) == {model}


def test_summary_and_metrics(tiny_run):
    summary = (tiny_run / "results/summary.md").read_text()
    for paper_number in ["0.923", "2.637", "0.946", "387", "1134"]:
        assert paper_number in summary
    metrics = json.loads((tiny_run / "results/metrics.json").read_text())
    assert metrics


def test_nothing_left_to_do_and_dvc_clean(tiny_run):
    dry = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "1", "--configfile", "config/tiny.yaml"],
                         cwd=tiny_run, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr, (dry.stdout + dry.stderr)[-2000:]
    status = subprocess.run([str(BIN / "dvc"), "status"], cwd=tiny_run, capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
