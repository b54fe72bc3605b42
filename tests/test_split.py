"""Split (DESIGN §5): grouped by subject, 5:1 within one image on the paper cohort, stratified, seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fixtures_data import ImageSpec, cohort_tables, make_dataset

from vcmeasure.errors import ConfigError, InputError
from vcmeasure.split import _subjects, make_split, run_split, summary_markdown


@pytest.fixture(scope="module")
def paper_cohort():
    images, meas = cohort_tables()  # 387 images, 300 subjects, 87 with two images
    assert len(images) == 387 and images["subject_id"].nunique() == 300
    return images, meas


def test_grouped_and_5_to_1(paper_cohort):
    images, meas = paper_cohort
    for seed in range(5):
        s = make_split(images, meas, test_share=1 / 6, val_share=0.1, strata=4, seed=seed)
        assert list(s["image_id"]) == list(images["image_id"])
        assert set(s["split"]) == {"train", "val", "test"}
        assert (s.groupby("subject_id")["split"].nunique() == 1).all()  # no subject on two sides
        n_test = int((s["split"] == "test").sum())
        n_train = len(s) - n_test
        assert abs(n_test - len(s) / 6) <= 1  # within one image of 5:1 (387 / 6 = 64.5)
        assert abs(n_train - 5 * len(s) / 6) <= 1
        n_val = int((s["split"] == "val").sum())
        assert abs(n_val - 0.1 * n_train) <= 1


def test_config_share_is_used(paper_cohort):
    images, meas = paper_cohort
    s = make_split(images, meas, test_share=0.3, val_share=0.0, strata=3, seed=1)
    assert abs((s["split"] == "test").sum() - 0.3 * 387) <= 1
    assert "val" not in set(s["split"])


def test_deterministic_for_a_seed(paper_cohort):
    images, meas = paper_cohort
    a = make_split(images, meas, 1 / 6, 0.1, 4, seed=42)
    b = make_split(images.sample(frac=1, random_state=0).reset_index(drop=True), meas, 1 / 6, 0.1, 4, seed=42)
    pd.testing.assert_frame_equal(a, make_split(images, meas, 1 / 6, 0.1, 4, seed=42))
    # row order of images.csv does not change who goes where
    assert a.set_index("image_id")["split"].equals(b.set_index("image_id")["split"].loc[a["image_id"]])
    c = make_split(images, meas, 1 / 6, 0.1, 4, seed=43)
    assert not a["split"].equals(c["split"])


def test_stratified_by_largest_value(paper_cohort):
    images, meas = paper_cohort
    subj = _subjects(images, meas, 4)
    assert subj["stratum"].nunique() == 4
    # higher strata hold higher values
    assert subj.groupby("stratum")["value"].max().is_monotonic_increasing
    stratum_of = dict(zip(subj["subject_id"], subj["stratum"], strict=True))
    for seed in range(5):
        s = make_split(images, meas, 1 / 6, 0.0, 4, seed=seed)
        s["stratum"] = s["subject_id"].map(stratum_of)
        per = s.groupby("stratum")["split"].agg(lambda v: (v == "test").sum())
        size = s.groupby("stratum").size()
        np.testing.assert_array_less(np.abs(per - size / 6), 2.01)  # each stratum gives its own sixth
    # unstratified (one stratum) the top-quartile count in test drifts more across seeds than stratified
    spread = {}
    for strata in (1, 4):
        counts = []
        for seed in range(20):
            s = make_split(images, meas, 1 / 6, 0.0, strata, seed=seed)
            counts.append(int((s["split"].eq("test") & s["subject_id"].map(stratum_of).eq(3)).sum()))
        spread[strata] = np.std(counts)
    assert spread[4] < spread[1]


def test_images_without_values_or_subject(paper_cohort):
    images, meas = paper_cohort
    images = images.copy()
    images.loc[:9, "subject_id"] = np.nan  # each becomes its own subject
    meas = meas[~meas["image_id"].isin(images["image_id"].iloc[10:20])]  # no measured bodies
    s = make_split(images, meas, 1 / 6, 0.1, 4, seed=0)
    assert len(s) == 387 and s["split"].notna().all()


def test_tiny_cohort_gets_a_test_subject():
    images = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "subject_id": ["s1", "s1", "s2", "s2"]})
    meas = pd.DataFrame({"image_id": ["a", "c"], "label": [2, 2], "measure": "vc_anterior",
                         "value_true": [5.0, 30.0], "value_reader": [5.0, 30.0], "genant_grade": [0, 2]})
    s = make_split(images, meas, 1 / 6, 0.1, 4, seed=0)
    assert (s["split"] == "test").sum() == 2 and (s["split"] == "train").sum() == 2
    # with enough subjects, a small validation share still yields a validation subject
    images = pd.DataFrame({"image_id": list("abcdef"), "subject_id": ["s1", "s2", "s3", "s4", "s5", "s6"]})
    s = make_split(images, meas, 1 / 6, 0.05, 4, seed=0)
    assert s["split"].value_counts().to_dict() == {"train": 4, "test": 1, "val": 1}


def test_bad_inputs():
    images = pd.DataFrame({"image_id": ["a", "b"], "subject_id": ["s1", "s1"]})
    meas = pd.DataFrame(columns=["image_id", "value_reader", "value_true"])
    with pytest.raises(InputError, match="subject"):
        make_split(images, meas)
    with pytest.raises(ConfigError, match="split.test_share"):
        make_split(images, meas, test_share=1.5)
    with pytest.raises(InputError, match="duplicate"):
        make_split(pd.DataFrame({"image_id": ["a", "a"], "subject_id": ["1", "2"]}), meas)


def test_summary_and_run_split(tmp_path):
    specs = [ImageSpec(f"i{k}", f"s{k % 9}", 40, 60, wedge=0.05 * k) for k in range(18)]
    ds = make_dataset(tmp_path / "ds", specs)
    s = run_split(ds, tmp_path / "out/split.csv", tmp_path / "out/summary.md", 1 / 6, 0.1, 4, seed=3)
    written = pd.read_csv(tmp_path / "out/split.csv", dtype=str)
    assert list(written.columns) == ["image_id", "subject_id", "split"]
    pd.testing.assert_frame_equal(written, s.astype(str))
    text = (tmp_path / "out/summary.md").read_text()
    meas = pd.read_csv(ds / "measurements.csv")
    assert text == summary_markdown(s, meas)
    n_test = int((s["split"] == "test").sum())
    assert f"| test | {n_test} | {s[s.split == 'test'].subject_id.nunique()} |" in text
    n_frac = int((meas["value_reader"] >= 20).sum())
    all_row = next(line for line in text.splitlines() if line.startswith("| all |"))
    assert all_row.split("|")[5].strip() == str(n_frac)
    assert "Subjects in more than one split: 0." in text
