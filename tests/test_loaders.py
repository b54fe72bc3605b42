"""Loaders (DESIGN §5): batch shapes and ranges, seeded determinism, paired augmentation, none in evaluation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vcmeasure.errors import InputError
from vcmeasure.loaders import SegmentationDataset, WindowDataset, augment_pair


@pytest.fixture()
def folders(tmp_path):
    """Five 40x40 preprocessed-like images whose bright blocks are exactly their label masks."""
    img_dir, mask_dir = tmp_path / "images", tmp_path / "masks"
    img_dir.mkdir()
    mask_dir.mkdir()
    ids = []
    for k in range(5):
        mask = np.zeros((40, 40), np.uint8)
        mask[5 + k:15 + k, 8:30] = 1
        mask[20:32, 10 + k:28] = 2
        img = np.where(mask > 0, 200, 20).astype(np.uint8)
        cv2.imwrite(str(img_dir / f"im{k}.png"), img)
        cv2.imwrite(str(mask_dir / f"im{k}.png"), mask)
        ids.append(f"im{k}")
    return img_dir, mask_dir, ids


def _epoch(ds):
    return [ds[i] for i in range(len(ds))]


def test_eval_batches_are_the_data(folders):
    img_dir, mask_dir, ids = folders
    ds = SegmentationDataset(img_dir, mask_dir, ids, batch_size=2)
    assert len(ds) == 3
    x, y = ds[0]
    assert x.shape == (2, 40, 40, 1) and y.shape == (2, 40, 40, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    raw = cv2.imread(str(img_dir / "im0.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(x[0, ..., 0], raw / 255.0, atol=1e-6)
    assert set(np.unique(y)) == {0.0, 1.0}  # labels 1 and 2 both become foreground
    assert ds[2][0].shape[0] == 1  # last partial batch
    # evaluation: identical every epoch, no augmentation
    first = _epoch(ds)
    ds.on_epoch_end()
    for (a, b), (c, d) in zip(first, _epoch(ds), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_seeded_determinism_and_resume(folders):
    img_dir, mask_dir, ids = folders
    runs = []
    for _ in range(2):
        ds = SegmentationDataset(img_dir, mask_dir, ids, 2, augment=True, seed=7, shuffle=True)
        epochs = []
        for _ in range(3):
            epochs.append(_epoch(ds))
            ds.on_epoch_end()
        runs.append(epochs)
    for e in range(3):
        for (a, b), (c, d) in zip(runs[0][e], runs[1][e], strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)
    # epochs differ from each other (new order / augmentation) ...
    assert not np.array_equal(runs[0][0][0][0], runs[0][1][0][0])
    # ... a resumed loader (epoch set) reproduces epoch 2 exactly, batches requested in any order
    resumed = SegmentationDataset(img_dir, mask_dir, ids, 2, augment=True, seed=7, shuffle=True)
    resumed.epoch = 2
    for i in reversed(range(len(resumed))):
        np.testing.assert_array_equal(resumed[i][0], runs[0][2][i][0])
    # another seed gives other batches
    other = SegmentationDataset(img_dir, mask_dir, ids, 2, augment=True, seed=8, shuffle=True)
    assert not np.array_equal(other[0][0], runs[0][0][0][0])


def test_shuffle_is_a_permutation(folders):
    img_dir, mask_dir, ids = folders
    ds = SegmentationDataset(img_dir, mask_dir, ids, 2, shuffle=True, seed=3)
    orders = []
    for _ in range(4):
        orders.append(tuple(ds.order()))
        ds.on_epoch_end()
    assert all(sorted(o) == list(range(5)) for o in orders)
    assert len(set(orders)) > 1


def test_augmentation_moves_image_and_mask_together(folders):
    img_dir, mask_dir, ids = folders
    plain = SegmentationDataset(img_dir, mask_dir, ids, 5)
    aug = SegmentationDataset(img_dir, mask_dir, ids, 5, augment=True, seed=1)
    x0, y0 = plain[0]
    x, y = aug[0]
    assert not np.array_equal(y, y0)  # geometry really changed
    assert not np.allclose(x, x0)
    assert x.min() >= 0 and x.max() <= 1 and set(np.unique(y)) <= {0.0, 1.0}
    # the bright region of the augmented image is the augmented mask (bilinear vs nearest differ only at edges)
    bright = x > (x.max() + x.min()) / 2
    agreement = (bright == (y > 0.5)).mean()
    assert agreement > 0.97


def test_augment_pair_keeps_labels_and_shape():
    rng = np.random.default_rng(0)
    mask = np.zeros((50, 60), np.uint16)
    mask[10:20, 10:40] = 3
    mask[25:40, 12:45] = 300
    img = rng.random((50, 60)).astype(np.float32)
    out_img, out_mask = augment_pair(img, mask, rng)
    assert out_img.shape == img.shape and out_mask.shape == mask.shape and out_mask.dtype == np.uint16
    assert set(np.unique(out_mask)) <= {0, 3, 300}  # nearest: no blended labels


def test_missing_image_is_an_input_error(folders):
    img_dir, mask_dir, ids = folders
    ds = SegmentationDataset(img_dir, mask_dir, [*ids, "nope"], 3)
    with pytest.raises(InputError, match="nope.png"):
        ds[1]


def test_window_dataset():
    rng = np.random.default_rng(0)
    x = np.zeros((7, 16, 16, 1), np.float32)
    x[:, 3:13, 5:11] = 1.0
    y = rng.uniform(0, 40, 7)
    ev = WindowDataset(x, y, 3)
    xb, yb = ev[0]
    np.testing.assert_array_equal(xb, x[:3])
    np.testing.assert_allclose(yb, y[:3].astype(np.float32))
    assert len(ev) == 3 and ev[2][0].shape[0] == 1
    a = WindowDataset(x, y, 3, augment=True, seed=5, shuffle=True)
    b = WindowDataset(x, y, 3, augment=True, seed=5, shuffle=True)
    for i in range(len(a)):
        np.testing.assert_array_equal(a[i][0], b[i][0])
        np.testing.assert_array_equal(a[i][1], b[i][1])
    xa, ya = a[0]
    assert any(not np.array_equal(a[i][0], x[a.batch_items(i)]) for i in range(len(a)))  # augmentation happened
    # vertical extent (hence heights) untouched; labels follow their windows
    for k, i in enumerate(a.order()[:3]):
        rows = np.nonzero(xa[k, :, :, 0].max(axis=1) > 0)[0]
        assert rows.min() == 3 and rows.max() == 12
        assert ya[k] == np.float32(y[i])
    with pytest.raises(InputError):
        WindowDataset(x, y[:3], 2)
