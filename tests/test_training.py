"""training.fit_resumable: resume after an interruption, settings fingerprint, CPU determinism (DESIGN §5)."""

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from vcmeasure.models.segmentation import build_segmentation_model, compile_segmentation_model  # noqa: E402
from vcmeasure.training import finalize, fit_resumable  # noqa: E402


class ArrayDataset(keras.utils.PyDataset):
    """Stand-in for loaders.SegmentationDataset: fixed random images, masks = bright pixels."""

    def __init__(self, n=4, size=16, batch=2, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.x = rng.random((n, size, size, 1), dtype=np.float32)
        self.y = (self.x > 0.6).astype(np.float32)
        self.batch = batch

    def __len__(self):
        return len(self.x) // self.batch

    def __getitem__(self, i):
        s = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[s], self.y[s]


def build():
    return compile_segmentation_model(build_segmentation_model("unet", 16, base_filters=2, depth=1), 1e-2)


class StopAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt("simulated kill")


class StartIterations(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.iterations = int(self.model.optimizer.iterations.numpy())


def fit(workdir, epochs=4, callbacks=(), settings=None, seed=7):
    return fit_resumable(build, ArrayDataset(), ArrayDataset(seed=1), epochs=epochs, workdir=workdir,
                         monitor="val_dice", seed=seed, settings=settings or {"arch": "unet"}, verbose=0,
                         callbacks=callbacks)


def test_resume_after_interruption(tmp_path):
    work = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(work, callbacks=[StopAfter(2)])
    assert len(pd.read_csv(work / "history.csv")) == 2
    probe = StartIterations()
    result = fit(work, callbacks=[probe])
    assert result.resumed_from == 2
    assert probe.iterations == 2 * len(ArrayDataset())  # optimizer state came back with the weights
    assert list(result.history["epoch"]) == [1, 2, 3, 4]
    assert 1 <= result.best_epoch <= 4
    assert result.best_value == pytest.approx(result.history["val_dice"].max())
    # a finished run reruns as a no-op
    again = fit(work)
    assert again.resumed_from == 4 and len(again.history) == 4
    # other settings: the checkpoint is not reused
    fresh = fit(work, epochs=1, settings={"arch": "other"})
    assert fresh.resumed_from == 0 and len(fresh.history) == 1
    finalize(fresh, tmp_path / "model.keras", tmp_path / "history.csv", work)
    assert (tmp_path / "model.keras").is_file() and not work.exists()
    assert len(pd.read_csv(tmp_path / "history.csv")) == 1


def test_same_seed_same_weights(tmp_path):
    a = fit(tmp_path / "a", epochs=2)
    b = fit(tmp_path / "b", epochs=2)
    wa = keras.models.load_model(a.model_path).get_weights()
    wb = keras.models.load_model(b.model_path).get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)
    pd.testing.assert_frame_equal(a.history, b.history)
    # and the seed matters (the equality above is not vacuous)
    c = fit(tmp_path / "c", epochs=2, seed=8)
    wc = keras.models.load_model(c.model_path).get_weights()
    assert any(not np.array_equal(x, z) for x, z in zip(wa, wc, strict=True))


# ---- with the real loader (vcmeasure.loaders.SegmentationDataset) and the segmentation step ----

def make_cohort(root, n=8, size=16, seed=0):
    """Tiny preprocessed cohort: dark noisy images with 2 bright 'bodies', masks labelled 1, 2 top to bottom."""
    from vcmeasure.io import write_png

    rng = np.random.default_rng(seed)
    ids = [f"img{i:02d}" for i in range(n)]
    for i in ids:
        mask = np.zeros((size, size), np.uint8)
        top = int(rng.integers(1, 4))
        mask[top:top + 5, 3:12] = 1
        mask[top + 8:top + 12, 4:13] = 2
        img = (rng.random((size, size)) * 60 + (mask > 0) * 150).astype(np.uint8)
        write_png(root / "pre/images" / f"{i}.png", img)
        write_png(root / "pre/masks" / f"{i}.png", mask)
        write_png(root / "raw/images" / f"{i}.png", (img.astype(np.uint16) * 200))
    split = ["train"] * (n - 4) + ["val", "val", "test", "test"]
    pd.DataFrame({"image_id": ids, "subject_id": [f"s{i}" for i in range(n)], "split": split}).to_csv(
        root / "split.csv", index=False)
    return ids


def loader_fit(root, work, callbacks=(), epochs=3):
    from vcmeasure.loaders import SegmentationDataset

    ids = pd.read_csv(root / "split.csv")
    tr = SegmentationDataset(root / "pre/images", root / "pre/masks", ids.image_id[ids.split == "train"], 2,
                             augment=True, seed=3, shuffle=True)
    va = SegmentationDataset(root / "pre/images", root / "pre/masks", ids.image_id[ids.split == "val"], 2)
    return fit_resumable(build, tr, va, epochs=epochs, workdir=work, monitor="val_dice", seed=3,
                         settings={"arch": "unet"}, verbose=0, callbacks=callbacks)


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    """Shuffled, augmented loader: a run killed after epoch 1 and resumed ends with the same weights."""
    make_cohort(tmp_path)
    loader_fit(tmp_path, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        loader_fit(tmp_path, tmp_path / "cut", callbacks=[StopAfter(1)])
    resumed = loader_fit(tmp_path, tmp_path / "cut")
    assert resumed.resumed_from == 1
    assert list(resumed.history["epoch"]) == [1, 2, 3]
    assert (tmp_path / "full/history.csv").read_bytes() == (tmp_path / "cut/history.csv").read_bytes()
    w_full = keras.models.load_model(tmp_path / "full/last.keras").get_weights()
    w_cut = keras.models.load_model(tmp_path / "cut/last.keras").get_weights()
    for x, y in zip(w_full, w_cut, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_segmentation_step_end_to_end(tmp_path):
    """train -> predict -> evaluate -> select -> figure 6 on a tiny cohort; reruns give identical outputs.

    (Same seed -> same weights is test_same_seed_same_weights / test_resumed_run_equals_uninterrupted_run; here
    the steps after training must be pure functions of the model and the data.)
    """
    from vcmeasure import segmentation as seg

    ids = make_cohort(tmp_path)
    archs = ["unet", "r2unet"]
    for arch in archs:
        out = tmp_path / arch
        seg.train(arch, tmp_path / "pre/images", tmp_path / "pre/masks", tmp_path / "split.csv",
                  out / "model.keras", out / "history.csv", out / "curve.png", checkpoint_dir=out / "checkpoint",
                  base_filters=2, depth=2, batch_size=2, epochs=2, learning_rate=1e-2, augment=True, seed=5,
                  verbose=0)
        assert not (out / "checkpoint").exists()
        assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2]
        assert (out / "curve.png").stat().st_size > 0
        for run in ("a", "b"):
            written = seg.predict(out / "model.keras", tmp_path / "pre/images", out / f"masks_{run}",
                                  threshold=0.5, min_component_px=2)
            assert written == ids
        assert sorted(p.stem for p in (out / "masks_a").glob("*.png")) == ids
    outputs = {}
    for run in ("a", "b"):
        r = tmp_path / f"run_{run}"
        table = seg.evaluate(archs, [tmp_path / a / f"masks_{run}" for a in archs], tmp_path / "pre/masks",
                             tmp_path / "split.csv", [r / f"{a}.csv" for a in archs], r / "table1.csv",
                             r / "table1.md")
        assert list(table["architecture"]) == archs and list(table["n_images"]) == [2, 2]
        assert seg.select_architecture(r / "table1.csv", archs, r / "selected.txt") in archs
        shown = seg.figure6(archs, tmp_path / "raw", tmp_path / "pre/images",
                            [tmp_path / a / f"masks_{run}" for a in archs], tmp_path / "pre/masks",
                            tmp_path / "split.csv", r / "fig6.png")
        assert shown == ["img06", "img07"]
        outputs[run] = [(r / n).read_bytes() for n in ("table1.csv", "table1.md", "selected.txt", "fig6.png")]
    assert outputs["a"] == outputs["b"]
