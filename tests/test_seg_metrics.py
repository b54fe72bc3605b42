"""Table 1 metrics (paper Eqs. 2-5, DESIGN §4), detection rate, HD95 and mask post-processing, by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from vcmeasure.postprocess import label_bodies, probability_to_labels
from vcmeasure.seg_metrics import confusion, detection_rate, hd95, image_metrics, pixel_metrics


def test_pixel_metrics_hand_case():
    truth = np.zeros((4, 5), np.uint8)
    truth[0:2, 0:3] = 1  # 6 true pixels
    truth[3, 4] = 2  # +1 of another body: 7
    pred = np.zeros((4, 5), np.uint8)
    pred[0:2, 0:2] = 1  # 4 TP
    pred[2, 0] = 3  # 1 FP
    # FN = 7 - 4 = 3 ; TN = 20 - 4 - 1 - 3 = 12
    assert confusion(pred, truth) == {"tp": 4, "fp": 1, "fn": 3, "tn": 12}
    m = pixel_metrics(pred, truth)
    assert m["sensitivity"] == pytest.approx(4 / 7)
    assert m["specificity"] == pytest.approx(12 / 13)
    assert m["accuracy"] == pytest.approx(16 / 20)
    assert m["dsc"] == pytest.approx(8 / 12)


def test_undefined_ratios_are_nan_and_perfect_is_one():
    empty = np.zeros((3, 3), np.uint8)
    m = pixel_metrics(empty, empty)
    assert math.isnan(m["sensitivity"]) and math.isnan(m["dsc"])
    assert m["specificity"] == 1 and m["accuracy"] == 1
    full = np.ones((3, 3), np.uint8)
    assert pixel_metrics(full, full)["dsc"] == 1
    with pytest.raises(ValueError, match="shape"):
        pixel_metrics(np.zeros((2, 2)), np.zeros((3, 3)))


def test_detection_rate_one_to_one():
    truth = np.zeros((10, 10), np.uint8)
    truth[0:3, 0:4] = 1  # 12 px
    truth[4:7, 0:4] = 2  # 12 px
    truth[8:10, 0:4] = 3  # 8 px
    pred = np.zeros_like(truth)
    pred[0:3, 0:4] = 1  # exact match of body 1
    pred[4:5, 0:4] = 2  # 4 px of body 2: DSC 8/16 = 0.5 -> detected (>=)
    # body 3 missed
    assert detection_rate(pred, truth) == pytest.approx(2 / 3)
    assert detection_rate(pred, truth, min_dice=0.51) == pytest.approx(1 / 3)
    # one predicted blob covering bodies 1 and 2 (merged) can match at most one of them
    merged = np.zeros_like(truth)
    merged[0:7, 0:4] = 1
    assert detection_rate(merged, truth) == pytest.approx(1 / 3)
    assert detection_rate(np.zeros_like(truth), truth) == 0
    assert math.isnan(detection_rate(truth, np.zeros_like(truth)))


def test_hd95_hand_cases():
    a = np.zeros((20, 20), bool)
    a[5:10, 5:10] = True
    assert hd95(a, a) == 0
    b = np.roll(a, 3, axis=1)  # shifted 3 px: every boundary point is within 3 px, many exactly 3
    assert hd95(a, b) == pytest.approx(3.0)
    # a far speck dominates the max but not the 95th percentile
    c = a.copy()
    c[19, 19] = True
    assert hd95(a, c) < 1.0
    assert math.isnan(hd95(a, np.zeros_like(a)))


def test_image_metrics_counts_bodies():
    truth = np.zeros((10, 10), np.uint8)
    truth[1:4, 1:5], truth[6:9, 1:5] = 1, 2
    out = image_metrics(truth, truth)
    assert out["n_bodies_true"] == 2 and out["n_bodies_pred"] == 2
    assert out["dsc"] == 1 and out["detection_rate"] == 1 and out["hd95"] == 0


def test_label_bodies_top_to_bottom_and_specks():
    fg = np.zeros((30, 12), bool)
    fg[20:26, 2:8] = True  # bottom body, 36 px
    fg[2:8, 3:9] = True  # top body
    fg[11:17, 1:7] = True  # middle body
    fg[0, 11] = True  # 1-px speck at the very top
    labels = label_bodies(fg, min_component_px=5)
    assert labels.dtype == np.uint8
    assert labels[4, 5] == 1 and labels[13, 3] == 2 and labels[22, 4] == 3
    assert labels[0, 11] == 0
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    # without speck removal the speck is the top-most component
    assert label_bodies(fg, 0)[0, 11] == 1


def test_label_bodies_four_connectivity_keeps_diagonal_neighbours_apart():
    fg = np.zeros((4, 4), bool)
    fg[0:2, 0:2] = True
    fg[2:4, 2:4] = True  # touches the first only at a corner
    assert label_bodies(fg).max() == 2


def test_probability_to_labels_threshold():
    prob = np.zeros((8, 8, 1), np.float32)
    prob[1:3, 1:3, 0] = 0.5  # >= threshold: kept
    prob[5:7, 5:7, 0] = 0.49
    labels = probability_to_labels(prob, threshold=0.5)
    assert labels.shape == (8, 8)
    assert labels.max() == 1 and labels[2, 2] == 1 and labels[6, 6] == 0


def test_evaluate_table_and_selection(tmp_path):
    from vcmeasure.io import write_png
    from vcmeasure.segmentation import TABLE1_COLUMNS, evaluate, select_architecture

    gt = tmp_path / "gt"
    preds = {a: tmp_path / a for a in ("unet", "resunet", "r2unet")}
    truth = np.zeros((16, 16), np.uint8)
    truth[2:6, 2:10], truth[8:12, 2:10] = 1, 2
    ids = ["a", "b", "c"]
    for i in ids:
        write_png(gt / f"{i}.png", truth)
        write_png(preds["unet"] / f"{i}.png", truth)  # perfect
        shifted = np.roll(truth, 1, axis=0)
        write_png(preds["resunet"] / f"{i}.png", shifted)
        write_png(preds["r2unet"] / f"{i}.png", truth)  # also perfect: tie with unet
    write_png(preds["resunet"] / "train1.png", truth)
    split = pd.DataFrame({"image_id": ids + ["train1"], "subject_id": ["s1", "s2", "s3", "s4"],
                          "split": ["test"] * 3 + ["train"]})
    split.to_csv(tmp_path / "split.csv", index=False)
    archs = ["unet", "resunet", "r2unet"]
    outs = [tmp_path / f"{a}_per_image.csv" for a in archs]
    table = evaluate(archs, [preds[a] for a in archs], gt, tmp_path / "split.csv", outs,
                     tmp_path / "t1.csv", tmp_path / "t1.md")
    assert list(pd.read_csv(tmp_path / "t1.csv").columns) == TABLE1_COLUMNS
    assert list(table["n_images"]) == [3, 3, 3]
    per = pd.read_csv(outs[1], dtype={"image_id": str})
    assert list(per["image_id"]) == ids  # test images only
    # shifted by one row: each 32-px body loses 8 px and gains 8 -> TP 48, FP 16, FN 16
    assert table.loc[1, "dsc_mean"] == pytest.approx(96 / 128, abs=1e-6)
    assert table.loc[1, "dsc_sd"] == pytest.approx(0, abs=1e-9)
    md = (tmp_path / "t1.md").read_text()
    assert "R2U-Net" in md and "0.923 ± 0.073" in md
    # tie between unet and r2unet at DSC 1: config order decides
    assert select_architecture(tmp_path / "t1.csv", archs, tmp_path / "sel.txt") == "unet"
    assert (tmp_path / "sel.txt").read_text() == "unet\n"
    assert select_architecture(tmp_path / "t1.csv", ["r2unet", "unet", "resunet"], tmp_path / "s2.txt") == "r2unet"
