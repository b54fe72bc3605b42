"""training.fit_resumable: resume after an interruption, settings fingerprint, CPU determinism (DESIGN §5)."""

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from vcmeasure.models.segmentation import build_segmentation_model, compile_segmentation_model  # noqa: E402
from vcmeasure.training import finalize, fit_resumable  # noqa: E402


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


def loaders(root):
    from vcmeasure.loaders import SegmentationDataset

    ids = pd.read_csv(root / "split.csv")
    tr = SegmentationDataset(root / "pre/images", root / "pre/masks", ids.image_id[ids.split == "train"], 2,
                             augment=True, seed=3, shuffle=True)
    va = SegmentationDataset(root / "pre/images", root / "pre/masks", ids.image_id[ids.split == "val"], 2)
    return tr, va


def loader_fit(root, work, callbacks=(), epochs=3):
    return fit_resumable(build, *loaders(root), epochs=epochs, workdir=work, monitor="val_dice", seed=3,
                         settings={"arch": "unet"}, verbose=0, callbacks=callbacks)


def loader_seed_weights(seed):
    from vcmeasure.seeding import seed_everything

    seed_everything(seed)
    return build().get_weights()


def test_resume_is_exact_and_training_deterministic(tmp_path):
    """Shuffled, augmented loader, seed fixed: a run killed after epoch 1 and rerun resumes at epoch 1 (with its
    optimizer state) and ends with exactly the weights and history of an uninterrupted run."""
    make_cohort(tmp_path)
    full = loader_fit(tmp_path, tmp_path / "full")
    assert full.resumed_from == 0
    with pytest.raises(KeyboardInterrupt):
        loader_fit(tmp_path, tmp_path / "cut", callbacks=[StopAfter(1)])
    assert len(pd.read_csv(tmp_path / "cut/history.csv")) == 1
    probe = StartIterations()
    resumed = loader_fit(tmp_path, tmp_path / "cut", callbacks=[probe])
    assert resumed.resumed_from == 1
    assert probe.iterations == 2  # one epoch of 2 batches: Adam's state came back with the weights
    assert list(resumed.history["epoch"]) == [1, 2, 3]
    assert (tmp_path / "full/history.csv").read_bytes() == (tmp_path / "cut/history.csv").read_bytes()
    w_full = keras.models.load_model(tmp_path / "full/last.keras").get_weights()
    w_cut = keras.models.load_model(tmp_path / "cut/last.keras").get_weights()
    for x, y in zip(w_full, w_cut, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (resumed.best_epoch, resumed.best_value) == (full.best_epoch, full.best_value)
    assert resumed.best_value == pytest.approx(resumed.history["val_dice"].max())
    # the equality is not vacuous: another seed starts from other weights
    assert any(not np.array_equal(a, b) for a, b in zip(loader_seed_weights(3), loader_seed_weights(4), strict=True))
    # a finished run reruns as a no-op
    again = loader_fit(tmp_path, tmp_path / "cut")
    assert again.resumed_from == 3 and len(again.history) == 3
    # other settings: the checkpoint is not reused
    fresh = fit_resumable(build, *loaders(tmp_path), epochs=1, workdir=tmp_path / "cut", monitor="val_dice",
                          seed=3, settings={"arch": "other"}, verbose=0)
    assert fresh.resumed_from == 0 and len(fresh.history) == 1
    finalize(fresh, tmp_path / "model.keras", tmp_path / "history.csv", tmp_path / "cut")
    assert (tmp_path / "model.keras").is_file() and not (tmp_path / "cut").exists()
    assert len(pd.read_csv(tmp_path / "history.csv")) == 1


@pytest.mark.slow
def test_segmentation_step_end_to_end(tmp_path):
    """train -> predict -> evaluate -> select -> figure 6 on a tiny cohort; reruns give identical outputs.

    R2U-Net is trained for real (one epoch); a second 'architecture' whose masks are the ground truth stands in
    for a perfect model, so the selection has a known answer. Same seed -> same weights is covered above; here
    the steps after training must be pure functions of the model and the data.
    """
    import shutil

    from vcmeasure import segmentation as seg

    ids = make_cohort(tmp_path)
    out = tmp_path / "r2unet"
    seg.train("r2unet", tmp_path / "pre/images", tmp_path / "pre/masks", tmp_path / "split.csv",
              out / "model.keras", out / "history.csv", out / "curve.png", checkpoint_dir=out / "checkpoint",
              base_filters=2, depth=2, batch_size=2, epochs=1, learning_rate=1e-2, augment=True, seed=5, verbose=0)
    assert not (out / "checkpoint").exists()
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1]
    assert (out / "curve.png").stat().st_size > 0
    for run in ("a", "b"):
        assert seg.predict(out / "model.keras", tmp_path / "pre/images", out / f"masks_{run}", threshold=0.5,
                           min_component_px=2) == ids
    assert sorted(p.stem for p in (out / "masks_a").glob("*.png")) == ids
    shutil.copytree(tmp_path / "pre/masks", tmp_path / "perfect")
    archs = ["r2unet", "unet"]
    outputs = {}
    for run in ("a", "b"):
        r = tmp_path / f"run_{run}"
        dirs = [out / f"masks_{run}", tmp_path / "perfect"]
        table = seg.evaluate(archs, dirs, tmp_path / "pre/masks", tmp_path / "split.csv",
                             [r / f"{a}.csv" for a in archs], r / "table1.csv", r / "table1.md")
        assert list(table["architecture"]) == archs and list(table["n_images"]) == [2, 2]
        assert table.loc[1, "dsc_mean"] == 1 and table.loc[1, "detection_rate_mean"] == 1
        assert seg.select_architecture(r / "table1.csv", archs, r / "selected.txt") == "unet"
        shown = seg.figure6(archs, tmp_path / "raw", tmp_path / "pre/images", dirs, tmp_path / "pre/masks",
                            tmp_path / "split.csv", r / "fig6.png")
        assert shown == ["img06", "img07"]
        outputs[run] = [(r / n).read_bytes() for n in ("table1.csv", "table1.md", "selected.txt", "fig6.png")]
    assert outputs["a"] == outputs["b"]
