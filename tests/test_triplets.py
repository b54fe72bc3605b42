"""Three-vertebra windows (vcmeasure.triplets): the paper's three acceptance conditions (DESIGN §4) on crafted
label maps, height ratios kept in the windows, and the rule's outputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage.measure import label as cc_label
from test_geometry import craft_stack, draw_polygon

from vcmeasure import geometry, triplets
from vcmeasure.io import write_png


def _rejected(image, gt=None):
    _, rows, _, rejections, generated = triplets.image_windows("img", image, gt, 32)
    return {r["labels"]: (r["condition"], r["reason"]) for r in rejections}, rows, generated


def test_clean_stack_accepts_every_window():
    image, _ = craft_stack(tilt=10, curve=3, ha_scale={3: 0.6})
    rejected, rows, generated = _rejected(image, image)
    assert generated == 5 and not rejected
    assert [r["middle_label"] for r in rows] == [2, 3, 4, 5, 6]
    assert [r["gt_label"] for r in rows] == [2, 3, 4, 5, 6]


def test_body_split_in_two_fails_condition_1():
    image, truth = craft_stack(tilt=-6, curve=2)
    # cut body 4 across its middle, parallel to its endplates
    mid_a, mid_p = truth[3][[0, 1]].mean(axis=0), truth[3][[2, 3]].mean(axis=0)
    start, end = np.round(2 * mid_a - mid_p).astype(int), np.round(2 * mid_p - mid_a).astype(int)
    cv2.line(image, tuple(map(int, start)), tuple(map(int, end)), 0, 2)
    # as a label map (label 4 in two pieces) and as a network output (every piece its own label)
    for split_map in (image, cc_label(image > 0, connectivity=1).astype(np.uint8)):
        rejected, rows, _ = _rejected(split_map)
        assert rejected, "a split body must be rejected"
        for condition, reason in rejected.values():
            assert condition == triplets.SPLIT_MERGED
            assert "split" in reason or "fragment" in reason
        # windows away from the split body (now two components, 4 and 5 of 8) survive
        assert {r["middle_label"] for r in rows} == {2, 7}


def test_two_bodies_merged_fail_condition_1():
    image, truth = craft_stack(tilt=8)
    # bridge bodies 3 and 4 and give them one label, as a network output would
    bridge = np.array([truth[2][1], truth[2][3], truth[3][2], truth[3][0]])
    draw_polygon(image, bridge, 3, radius=0)
    image[image == 4] = 3
    for k in range(5, 8):
        image[image == k] = k - 1
    rejected, rows, generated = _rejected(image)
    assert generated == 4
    windows_with_merged = {"2-3-4", "3-4-5", "1-2-3"}
    assert set(rejected) == windows_with_merged
    assert all(c == triplets.SPLIT_MERGED and "merged" in r for c, r in rejected.values())
    # with the ground truth the merge is named by the bodies it covers
    gt, _ = craft_stack(tilt=8)
    comps = triplets.analyse(image, gt)
    assert "merged" in comps.split_merged[3]


def test_missing_middle_body_fails_condition_3():
    gt, _ = craft_stack(tilt=-10, curve=-3, ha_scale={2: 0.7})
    image = gt.copy()
    image[image == 4] = 0  # body 4 not segmented: a gap between the components 3 and 4
    rejected, rows, generated = _rejected(image)
    assert generated == 4
    assert set(rejected) == {"2-3-4", "3-4-5"}
    assert all(c == triplets.NOT_ADJACENT and "missing" in r for c, r in rejected.values())
    assert [r["middle_label"] for r in rows] == [2, 5]
    comps = triplets.analyse(image, gt)
    assert comps.gt_labels == [1, 2, 3, 5, 6, 7]
    assert 3 in comps.gaps and 3 not in comps.split_merged


def test_gap_found_from_ground_truth_when_spacing_looks_normal(monkeypatch):
    gt, _ = craft_stack(h=30.0, gap=6.0)
    image = gt.copy()
    image[image == 4] = 0
    # spacing alone no longer sees the gap: only the ground-truth match (bodies 3 and 5) tells
    monkeypatch.setattr(triplets, "GAP_SPACING", 100.0)
    assert not triplets.analyse(image).gaps
    comps = triplets.analyse(image, gt)
    assert comps.gt_labels[3] == 5
    assert "not adjacent" in comps.gaps[3]


def test_body_without_four_corners_fails_condition_2():
    image, truth = craft_stack(tilt=4)
    c = truth[3].mean(axis=0)
    image[image == 4] = 0
    cv2.ellipse(image, (int(round(c[0])), int(round(c[1]))), (22, 16), 4, 0, 360, 4, -1)
    rejected, rows, _ = _rejected(image)
    assert set(rejected) == {"2-3-4", "3-4-5", "4-5-6"}
    assert all(cond == triplets.NO_CORNERS and "body 4" in r for cond, r in rejected.values())
    assert [r["middle_label"] for r in rows] == [2, 6]


def test_too_few_bodies_is_an_image_level_rejection():
    image, _ = craft_stack(n=2)
    rejected, rows, generated = _rejected(image)
    assert generated == 0 and not rows
    assert rejected[""][0] == triplets.NOT_ADJACENT


@pytest.mark.parametrize("size", [64, 128])
def test_windows_preserve_height_ratios(size):
    image, _ = craft_stack(h=40.0, size=480, tilt=12, curve=3, ha_scale={3: 0.55, 4: 0.8})
    comps, rows, crops, _, _ = triplets.image_windows("img", image, None, size)
    assert len(crops) == 5
    for row, crop in zip(rows, crops, strict=True):
        assert crop.shape == (size, size) and crop.dtype == np.float32
        assert 0.0 <= crop.min() and crop.max() <= 1.0
        bodies = geometry.measure_bodies(cc_label(crop >= 0.5, connectivity=1))
        assert len(bodies) == 3
        # middle body centred
        assert np.allclose(bodies[1].centre, (size - 1) / 2, atol=2.0)
        src = [row["ha_above"], row["ha_middle"], row["ha_below"]]
        win = [b.ha for b in bodies]
        tol = 0.05 if size == 128 else 0.12  # a body is ~30 window px tall at 128, ~15 at 64
        assert win[1] / win[0] == pytest.approx(src[1] / src[0], rel=tol)
        assert win[1] / win[2] == pytest.approx(src[1] / src[2], rel=tol)


def test_extract_triplets_writes_outputs(tmp_path):
    masks, gt_masks = tmp_path / "pred", tmp_path / "gt"
    clean, truth = craft_stack(n=6, tilt=5, ha_scale={2: 0.6})
    gap = clean.copy()
    gap[gap == 3] = 0
    write_png(masks / "a.png", clean)
    write_png(masks / "b.png", gap)
    write_png(gt_masks / "a.png", clean)
    write_png(gt_masks / "b.png", clean)
    ha = [geometry.anterior_height(t) for t in truth]
    vert, meas = [], []
    for image_id in ("a", "b", "c"):
        for k in range(1, 7):
            vert.append({"image_id": image_id, "label": k, "level": f"T{k + 6}", "fractured": ""})
            if 1 < k < 6:
                vc = (1 - 2 * ha[k - 1] / (ha[k - 2] + ha[k])) * 100
                meas.append({"image_id": image_id, "label": k, "measure": "vc_anterior", "value_true": vc,
                             "value_reader": vc + 1.0, "genant_grade": 0})
    pd.DataFrame(vert).to_csv(tmp_path / "vertebrae.csv", index=False)
    pd.DataFrame(meas).to_csv(tmp_path / "measurements.csv", index=False)
    pd.DataFrame({"image_id": ["a", "b", "c"], "subject_id": ["s1", "s2", "s3"],
                  "split": ["train", "test", "test"]}).to_csv(tmp_path / "split.csv", index=False)
    out = tmp_path / "out"
    summary = triplets.extract_triplets(
        masks, gt_masks, tmp_path / "vertebrae.csv", tmp_path / "measurements.csv", tmp_path / "split.csv",
        out / "windows.npz", out / "index.csv", out / "rejections.csv", out / "summary.md", out / "summary.json",
        window_size=32, fracture_threshold=20.0, source="predicted")
    index = pd.read_csv(out / "index.csv", dtype={"image_id": str})
    assert list(index.columns) == triplets.INDEX_COLUMNS
    data = np.load(out / "windows.npz")
    assert data["x"].shape == (len(index), 32, 32, 1) and data["x"].dtype == np.float32
    assert list(data["triplet_id"]) == list(index["triplet_id"])
    # image a: windows 2..5; image b (body 3 missing): only the window around b's component 4 (gt body 5)
    assert list(index["image_id"]) == ["a"] * 4 + ["b"]
    a3 = index[index["triplet_id"] == "a_m03"].iloc[0]
    assert a3["gt_label"] == 3 and a3["level"] == "T9" and a3["split"] == "train" and a3["subject_id"] == "s1"
    assert a3["reference"] == pytest.approx(a3["value_true"] + 1.0, abs=1e-3)
    assert a3["fractured"] == 1 and a3["value_true"] >= 20
    assert index[index["triplet_id"] == "b_m04"].iloc[0]["gt_label"] == 5
    rejections = pd.read_csv(out / "rejections.csv")
    assert list(rejections.columns) == triplets.REJECTION_COLUMNS
    assert set(rejections["condition"]) == {triplets.NOT_ADJACENT}
    saved = json.loads((out / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["images_total"] == 2 and saved["images_failed"] == 0 and saved["images_without_mask"] == 1
    assert saved["windows_generated"] == 4 + 3 and saved["windows_accepted"] == 5
    assert saved["windows_by_split"] == {"train": 4, "val": 0, "test": 1}
    assert saved["fractured_test"] == 0
    assert "1134" in (out / "summary.md").read_text()


def test_ground_truth_overrules_shape_heuristics_for_a_small_body():
    image, _ = craft_stack(tilt=3)
    small = image == 4
    image[small] = 0
    # a genuinely small body 4: half its area, same place (the ground truth says it is one whole body)
    ys, xs = np.nonzero(small)
    keep = small & (np.abs(xs.mean() - np.arange(image.shape[1]))[None, :] < 0.25 * np.ptp(xs))
    image[keep] = 4
    assert 4 in triplets.analyse(image).split_merged  # shapes alone: a fragment
    comps = triplets.analyse(image, image)
    assert 4 not in comps.split_merged and not comps.gaps
