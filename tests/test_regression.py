"""Regression training and prediction (paper Methods; DESIGN §4-5): learning, resume, splits, I/O errors."""

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from vcmeasure.errors import InputError  # noqa: E402
from vcmeasure.measures import vertebral_compression  # noqa: E402
from vcmeasure.regression import PREDICTION_COLUMNS, load_windows, predict, split_rows, train  # noqa: E402

SIZE = 32


def toy_windows(tmp_path, n=160, seed=0, splits=(0.7, 0.1, 0.2)):
    """Three stacked rectangles centred on the middle one; neighbours 7 px high, so the middle height (3-9 px)
    encodes the target, Eq. 1 on the three heights (-14 to 57 % VC)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, SIZE, SIZE, 1), np.float32)
    rows = []
    for i in range(n):
        ha = hb = 7
        h = int(rng.integers(3, 10))
        w, gap, left = int(rng.integers(12, 17)), 2, int(rng.integers(6, 10))
        top = SIZE // 2 - h // 2
        for y0, hh in ((top - gap - ha, ha), (top, h), (top + h + gap, hb)):
            x[i, max(0, y0): y0 + hh, left: left + w, 0] = 1.0
        vc = vertebral_compression(h, ha, hb)
        split = rng.choice(["train", "val", "test"], p=splits)
        rows.append({"triplet_id": f"t{i:03d}", "image_id": f"img{i // 3}", "subject_id": f"s{i // 6}",
                     "split": split, "middle_label": 2, "gt_label": 2, "level": "", "reference": vc,
                     "value_true": vc, "fractured": int(vc >= 20)})
    index = pd.DataFrame(rows)
    np.savez(tmp_path / "windows.npz", x=x, triplet_id=index["triplet_id"].to_numpy(dtype=str))
    index.to_csv(tmp_path / "index.csv", index=False)
    return tmp_path / "windows.npz", tmp_path / "index.csv", index


def _outputs(tmp_path):
    out = tmp_path / "out"
    return out / "model.keras", out / "history.csv", out / "learning_curve.png"


def test_mrdn_learns_toy_set_better_than_the_mean(tmp_path):
    windows, index_csv, index = toy_windows(tmp_path)
    model, hist, curve = _outputs(tmp_path)
    result = train(windows, index_csv, model, hist, curve, model_name="mrdn", filters=8, batch_size=8,
                   epochs=10, learning_rate=0.01, seed=1, verbose=0)
    assert model.is_file() and curve.is_file() and not (model.parent / "checkpoint").exists()
    history = pd.read_csv(hist)
    assert len(history) == 10 and {"loss", "val_loss", "mae", "val_mae"} <= set(history.columns)
    assert result.best_value == pytest.approx(history["val_mae"].min(), rel=1e-5)

    preds = predict(windows, index_csv, model, tmp_path / "predictions.csv", model_name="mrdn")
    assert list(pd.read_csv(tmp_path / "predictions.csv").columns) == PREDICTION_COLUMNS
    assert len(preds) == len(index) and set(preds["split"]) == {"train", "val", "test"}
    test = preds[preds["split"] == "test"]
    train_mean = index.loc[index["split"] == "train", "reference"].mean()
    mae_model = np.mean(np.abs(test["predicted"] - test["reference"]))
    mae_mean = np.mean(np.abs(train_mean - test["reference"]))
    assert mae_model < 0.6 * mae_mean, (mae_model, mae_mean)


def test_training_resumes_after_interruption(tmp_path):
    windows, index_csv, _ = toy_windows(tmp_path, n=40)
    model, hist, curve = _outputs(tmp_path)

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise RuntimeError("killed")

    kwargs = dict(model_name="mrdn", filters=2, batch_size=8, epochs=3, learning_rate=0.001, seed=0, verbose=0)
    with pytest.raises(RuntimeError, match="killed"):
        train(windows, index_csv, model, hist, curve, callbacks=[Crash()], **kwargs)
    assert not model.exists() and (model.parent / "checkpoint" / "last.keras").is_file()
    result = train(windows, index_csv, model, hist, curve, **kwargs)
    assert result.resumed_from == 1
    assert list(pd.read_csv(hist)["epoch"]) == [1, 2, 3]
    assert model.is_file()


def test_empty_training_set_names_the_windows_file(tmp_path):
    windows, index_csv, index = toy_windows(tmp_path, n=12)
    index["split"] = "test"
    index.to_csv(index_csv, index=False)
    model, hist, curve = _outputs(tmp_path)
    with pytest.raises(InputError, match=r"windows\.npz: no training windows"):
        train(windows, index_csv, model, hist, curve, model_name="mrdn", filters=2, epochs=1)


def test_validation_is_carved_from_train_by_subject_when_absent(tmp_path):
    _, _, index = toy_windows(tmp_path, n=120, splits=(0.8, 0.0, 0.2))
    index.loc[index.index[:3], "reference"] = np.nan  # no reference: never trained on
    tr, va = split_rows(index, seed=3)
    assert len(va) > 0 and set(index["split"].iloc[va]) == {"train"}
    assert not set(index["subject_id"].iloc[tr]) & set(index["subject_id"].iloc[va])
    assert not {0, 1, 2} & (set(tr) | set(va))
    n_subjects = index.loc[index["split"] == "train", "subject_id"].nunique()
    assert index["subject_id"].iloc[va].nunique() == max(1, round(0.1 * n_subjects))
    tr2, va2 = split_rows(index, seed=3)
    assert list(va2) == list(va) and list(tr2) == list(tr)  # seeded


def test_negative_vc_is_kept_and_val_split_used(tmp_path):
    _, _, index = toy_windows(tmp_path, n=60)
    tr, va = split_rows(index, seed=0)
    assert (index["reference"].iloc[tr] < 0).any()
    assert set(index["split"].iloc[va]) == {"val"}


def test_load_windows_aligns_rows_by_triplet_id(tmp_path):
    windows, index_csv, index = toy_windows(tmp_path, n=10)
    shuffled = index.iloc[::-1]
    shuffled.to_csv(index_csv, index=False)
    x, idx = load_windows(windows, index_csv)
    with np.load(windows) as data:
        np.testing.assert_array_equal(x[0], data["x"][9])
    assert idx["triplet_id"].iloc[0] == "t009"
    index.assign(triplet_id=index["triplet_id"].str.replace("t000", "zz")).to_csv(index_csv, index=False)
    with pytest.raises(InputError, match="triplet 'zz' has no window"):
        load_windows(windows, index_csv)
    with pytest.raises(InputError, match="missing.npz: no such file"):
        load_windows(tmp_path / "missing.npz", index_csv)
