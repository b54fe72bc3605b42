"""`vcmeasure validate-dataset` (issue 3): deliberately broken datasets fail with the right messages."""

import shutil

import numpy as np
import pandas as pd
import pytest

from vcmeasure.cli import main
from vcmeasure.io import read_mask, write_png
from vcmeasure.synth import simulate_cohort
from vcmeasure.validate import validate_dataset


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return simulate_cohort(tmp_path_factory.mktemp("val") / "good", preset="test", n_images=3, seed=5)


@pytest.fixture
def broken(good, tmp_path):
    dest = tmp_path / "broken"
    shutil.copytree(good, dest)
    return dest


def _first_id(root):
    return pd.read_csv(root / "images.csv", dtype={"image_id": str})["image_id"].iloc[0]


def _only(problems, *needles):
    hits = [p for p in problems if all(n in p for n in needles)]
    assert hits, problems
    return hits


def test_good_dataset_is_valid(good, capsys):
    assert validate_dataset(good) == []
    assert main(["validate-dataset", str(good)]) == 0


def test_missing_image_file(broken, capsys):
    image_id = _first_id(broken)
    (broken / "images" / f"{image_id}.png").unlink()
    _only(validate_dataset(broken), f"images/{image_id}.png", "missing file", "images.csv line 2")
    assert main(["validate-dataset", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"images/{image_id}.png" in out and "1 problem(s)" in out


def test_missing_table(broken):
    (broken / "measurements.csv").unlink()
    assert validate_dataset(broken) == ["measurements.csv: missing file"]


def test_label_order_not_top_to_bottom(broken):
    image_id = _first_id(broken)
    path = broken / "masks" / f"{image_id}.png"
    mask = read_mask(path)
    swapped = mask.copy()
    swapped[mask == 1], swapped[mask == 2] = 2, 1
    write_png(path, swapped)
    problems = validate_dataset(broken)
    _only(problems, f"masks/{image_id}.png", "label order is not top to bottom")
    # the corners of labels 1 and 2 now sit on the other body
    _only(problems, "vertebrae.csv line 2", "outside body 1")


def test_corner_outside_body(broken):
    vert = pd.read_csv(broken / "vertebrae.csv", dtype={"image_id": str})
    step = -25.0 if vert.loc[2, "as_x"] < vert.loc[2, "ps_x"] else 25.0  # move the corner anteriorly, off the body
    vert.loc[2, "as_x"] += step
    row = vert.loc[2]
    vert.loc[2, "ha_px"] = np.hypot(row["as_x"] - row["ai_x"], row["as_y"] - row["ai_y"])
    vert.to_csv(broken / "vertebrae.csv", index=False)
    problems = validate_dataset(broken)
    _only(problems, "vertebrae.csv line 4", f"label {vert.loc[2, 'label']}", "corner as", "outside body")


def test_inconsistent_value_true(broken):
    meas = pd.read_csv(broken / "measurements.csv", dtype={"image_id": str})
    meas.loc[0, "value_true"] += 5.0
    meas.to_csv(broken / "measurements.csv", index=False)
    problems = validate_dataset(broken)
    assert len(problems) == 1
    _only(problems, "measurements.csv line 2", "is not Eq. 1")


def test_height_not_corner_distance(broken):
    vert = pd.read_csv(broken / "vertebrae.csv", dtype={"image_id": str})
    vert.loc[1, "hp_px"] += 3.0
    vert.to_csv(broken / "vertebrae.csv", index=False)
    _only(validate_dataset(broken), "vertebrae.csv line 3", "hp_px", "corner distance")


def test_bad_image_id(broken):
    images = pd.read_csv(broken / "images.csv", dtype={"image_id": str})
    old = images.loc[1, "image_id"]
    images.loc[1, "image_id"] = "bad id!"
    images.to_csv(broken / "images.csv", index=False)
    problems = validate_dataset(broken)
    _only(problems, "images.csv line 3", "bad image_id 'bad id!'")
    _only(problems, f"images/{old}.png", "not listed in images.csv")
    _only(problems, "vertebrae.csv", f"image {old}", "not in images.csv")
