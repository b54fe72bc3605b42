"""Batch loaders for training and evaluation (DESIGN §5 Models; paper Methods: segmentation and regression).

Both classes are ``keras.utils.PyDataset`` subclasses that build NumPy batches, so they work under every Keras
backend (no ``tf.data``). Randomness is a pure function of ``(seed, epoch, item)``:

- the order of a shuffled epoch comes from an RNG seeded by ``(seed, epoch)``;
- the augmentation of an item comes from an RNG seeded by ``(seed, epoch, item)``;

so batches do not depend on worker threads or on the order batches are requested, and a training resumed at
epoch ``k`` (set ``dataset.epoch = k``) sees exactly what an uninterrupted run would have seen. Evaluation
loaders (``augment=False``) return the data unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import keras
import numpy as np

from .errors import ConfigError, InputError
from .io import read_image, read_mask

# Segmentation augmentation ranges (mild: radiographs are already in canonical orientation and scale).
MAX_ROTATION_DEG = 5.0
MAX_SCALE_CHANGE = 0.05
MAX_GAMMA_LOG = math.log(1.25)  # gamma drawn log-uniformly in [1/1.25, 1.25]
MAX_CONTRAST_CHANGE = 0.1
MAX_BRIGHTNESS_SHIFT = 0.05
# Window (regression) augmentation: no geometric change that would alter height ratios.
WINDOW_MAX_SHIFT_PX = 2
WINDOW_MAX_INTENSITY_CHANGE = 0.05


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(k) & 0xFFFFFFFF for k in keys)])


def augment_pair(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random similarity transform applied to both (image bilinear, mask nearest), then intensity on the image.

    ``image`` float32 in [0, 1], ``mask`` any integer/float label map of the same shape; returns the same types.
    """
    h, w = image.shape[:2]
    angle = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)
    scale = 1.0 + rng.uniform(-MAX_SCALE_CHANGE, MAX_SCALE_CHANGE)
    gamma = math.exp(rng.uniform(-MAX_GAMMA_LOG, MAX_GAMMA_LOG))
    contrast = 1.0 + rng.uniform(-MAX_CONTRAST_CHANGE, MAX_CONTRAST_CHANGE)
    brightness = rng.uniform(-MAX_BRIGHTNESS_SHIFT, MAX_BRIGHTNESS_SHIFT)
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, scale)
    img = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    msk = cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)
    img = np.clip(img, 0.0, 1.0) ** gamma * contrast + brightness
    return np.clip(img, 0.0, 1.0).astype(np.float32), msk


class _EpochSeeded(keras.utils.PyDataset):
    """Order and augmentation drawn from (seed, epoch): shared by the two loaders."""

    def __init__(self, n: int, batch_size: int, augment: bool, seed: int, shuffle: bool, **kwargs):
        super().__init__(**kwargs)
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        if n < 1:
            raise InputError("loader: no items to load")
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Epochs completed so far; set it to resume (``dataset.epoch = initial_epoch``)."""
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch = int(value)

    def on_epoch_end(self) -> None:
        self._epoch += 1

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def order(self) -> np.ndarray:
        """Item indices in this epoch's order."""
        if not self.shuffle:
            return np.arange(self.n)
        return _rng(self.seed, self._epoch).permutation(self.n)

    def batch_items(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (0..{len(self) - 1})")
        return self.order()[index * self.batch_size:(index + 1) * self.batch_size]

    def item_rng(self, item: int) -> np.random.Generator:
        return _rng(self.seed, self._epoch, item, 1)


class SegmentationDataset(_EpochSeeded):
    """Preprocessed images and masks as ``(x, y)`` batches, float32 ``(b, H, W, 1)``.

    ``x`` is the image scaled to [0, 1]; ``y`` is 1 on any vertebral body (label > 0), else 0. Extra keyword
    arguments (``workers``, ``use_multiprocessing``, ``max_queue_size``) go to ``keras.utils.PyDataset``.
    """

    def __init__(self, image_dir: str | Path, mask_dir: str | Path, image_ids: Sequence[str], batch_size: int,
                 augment: bool = False, seed: int = 0, shuffle: bool = False, **pydataset_kwargs):
        self.image_dir, self.mask_dir = Path(image_dir), Path(mask_dir)
        self.image_ids = [str(i) for i in image_ids]
        super().__init__(len(self.image_ids), batch_size, augment, seed, shuffle, **pydataset_kwargs)

    def load(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Image (float32, [0, 1]) and binary mask (float32) of one item, augmented if training."""
        image_id = self.image_ids[item]
        image_path = self.image_dir / f"{image_id}.png"
        raw = read_image(image_path)
        image = raw.astype(np.float32) / (65535.0 if raw.dtype == np.uint16 else 255.0)
        mask = (read_mask(self.mask_dir / f"{image_id}.png") > 0).astype(np.uint8)
        if mask.shape != image.shape:
            raise InputError(f"{self.mask_dir / f'{image_id}.png'}: shape {mask.shape} differs from {image_path}")
        if self.augment:
            image, mask = augment_pair(image, mask, self.item_rng(item))
        return image, mask.astype(np.float32)

    def __getitem__(self, index: int):
        pairs = [self.load(int(i)) for i in self.batch_items(index)]
        x = np.stack([p[0] for p in pairs])[..., None]
        y = np.stack([p[1] for p in pairs])[..., None]
        return x, y


class WindowDataset(_EpochSeeded):
    """Three-vertebra windows ``x`` (n, S, S, 1) and reference values ``y`` (n,) as float32 batches.

    Training augmentation is deliberately mild: a small intensity jitter and a horizontal shift of at most
    ``WINDOW_MAX_SHIFT_PX`` pixels; nothing that changes vertical distances, hence the height ratios of Eq. 1.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, augment: bool = False, seed: int = 0,
                 shuffle: bool = False, **pydataset_kwargs):
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[0] != y.shape[0]:
            raise InputError(f"windows: x {x.shape} and y {y.shape} do not match (expected (n, S, S, 1) and (n,))")
        self.x, self.y = x, y
        super().__init__(len(y), batch_size, augment, seed, shuffle, **pydataset_kwargs)

    def _augment(self, window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        shift = int(rng.integers(-WINDOW_MAX_SHIFT_PX, WINDOW_MAX_SHIFT_PX + 1))
        gain = 1.0 + rng.uniform(-WINDOW_MAX_INTENSITY_CHANGE, WINDOW_MAX_INTENSITY_CHANGE)
        out = np.zeros_like(window)
        if shift >= 0:
            out[:, shift:] = window[:, :window.shape[1] - shift]
        else:
            out[:, :shift] = window[:, -shift:]
        return np.clip(out * gain, 0.0, 1.0).astype(np.float32)

    def __getitem__(self, index: int):
        items = self.batch_items(index)
        x = self.x[items]
        if self.augment:
            x = np.stack([self._augment(x[k], self.item_rng(int(i))) for k, i in enumerate(items)])
        return x, self.y[items]
