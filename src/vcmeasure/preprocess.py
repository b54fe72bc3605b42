"""Preprocessing (paper Methods, "Data preprocessing"; DESIGN §5 Orientation and Preprocessing).

Each radiograph is put in the canonical orientation (anterior facing left: images whose ``anterior_side`` is
``right`` are mirrored with their masks and corners), contrast-enhanced with CLAHE (OpenCV), resized keeping
its aspect ratio so that the longer side is ``size`` (512 in the paper) and zero-padded to a square.
The per-image :class:`Transform` (flip, scale, offsets) is stored in ``transforms.csv`` so that points and
masks map between original and preprocessed pixels in both directions.

Coordinate convention: pixel centres sit at integer coordinates (OpenCV's), so a horizontal flip maps
``x -> W - 1 - x`` and a resize by ``s`` maps ``x -> (x + 0.5) s - 0.5``, exactly what ``cv2.flip`` and
``cv2.resize`` do to the pixels. Per axis the scale is the resized length over the original length (the
shorter side is rounded to whole pixels), so points follow the image content exactly.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .dataset import CORNER_COLUMNS, load_dataset
from .errors import ConfigError, InputError
from .io import atomic_dir, read_image, read_mask, write_csv, write_png

log = logging.getLogger(__name__)

TRANSFORM_COLUMNS = ["image_id", "flipped", "scale", "offset_x", "offset_y", "orig_width", "orig_height", "size"]


def _resized_length(length: int, longer: int, size: int) -> int:
    """round(length * size / longer) in integer arithmetic (half up), so it never depends on float printing."""
    return max(1, (2 * length * size + longer) // (2 * longer))


def _nearest_index(src_len: int, dst_len: int) -> np.ndarray:
    """Source index of each destination pixel for a centre-aligned nearest-neighbour resize.

    Hand-written rather than ``cv2.INTER_NEAREST`` (top-left aligned) so that masks follow the same
    pixel-centre convention as the points and the round trip preprocessed -> original -> preprocessed is the
    identity whenever the original is the larger one (and original -> preprocessed -> original otherwise).
    """
    idx = np.floor((np.arange(dst_len) + 0.5) * (src_len / dst_len)).astype(np.int64)
    return np.clip(idx, 0, src_len - 1)


@dataclass(frozen=True)
class Transform:
    """Original <-> preprocessed pixel mapping of one image: optional flip, scale, then a zero-padding offset."""

    flipped: bool
    scale: float
    offset_x: int
    offset_y: int
    orig_width: int
    orig_height: int
    size: int

    @classmethod
    def create(cls, orig_width: int, orig_height: int, size: int, flipped: bool) -> Transform:
        """The transform of an ``orig_width`` x ``orig_height`` image: longer side to ``size``, centred padding."""
        if orig_width < 1 or orig_height < 1:
            raise InputError(f"image size {orig_width}x{orig_height} is empty")
        longer = max(orig_width, orig_height)
        new_w = _resized_length(orig_width, longer, size)
        new_h = _resized_length(orig_height, longer, size)
        return cls(bool(flipped), size / longer, (size - new_w) // 2, (size - new_h) // 2,
                   int(orig_width), int(orig_height), int(size))

    @classmethod
    def from_row(cls, row) -> Transform:
        """Rebuild from a ``transforms.csv`` row (dict or Series); the scale is recomputed from the sizes."""
        flipped = row["flipped"]
        if isinstance(flipped, str):
            flipped = flipped.strip().lower() in {"1", "true", "yes"}
        tf = cls.create(int(row["orig_width"]), int(row["orig_height"]), int(row["size"]), bool(flipped))
        if (tf.offset_x, tf.offset_y) != (int(row["offset_x"]), int(row["offset_y"])):
            raise InputError(f"transform of {row.get('image_id', '?')}: offsets do not match its sizes")
        return tf

    @property
    def resized_width(self) -> int:
        return _resized_length(self.orig_width, max(self.orig_width, self.orig_height), self.size)

    @property
    def resized_height(self) -> int:
        return _resized_length(self.orig_height, max(self.orig_width, self.orig_height), self.size)

    @property
    def scale_x(self) -> float:
        return self.resized_width / self.orig_width

    @property
    def scale_y(self) -> float:
        return self.resized_height / self.orig_height

    # --- points -------------------------------------------------------------------------------------
    def to_preprocessed(self, points) -> np.ndarray:
        """Map an (N, 2) array of original (x, y) pixels to preprocessed pixels (NaN stays NaN)."""
        p = np.array(points, dtype=float).reshape(-1, 2)
        x, y = p[:, 0], p[:, 1]
        if self.flipped:
            x = (self.orig_width - 1) - x
        return np.stack([(x + 0.5) * self.scale_x - 0.5 + self.offset_x,
                         (y + 0.5) * self.scale_y - 0.5 + self.offset_y], axis=1)

    def to_original(self, points) -> np.ndarray:
        """Exact inverse of :meth:`to_preprocessed`."""
        p = np.array(points, dtype=float).reshape(-1, 2)
        x = (p[:, 0] - self.offset_x + 0.5) / self.scale_x - 0.5
        y = (p[:, 1] - self.offset_y + 0.5) / self.scale_y - 0.5
        if self.flipped:
            x = (self.orig_width - 1) - x
        return np.stack([x, y], axis=1)

    # --- images and masks ---------------------------------------------------------------------------
    def _pad(self, resized: np.ndarray) -> np.ndarray:
        out = np.zeros((self.size, self.size), dtype=resized.dtype)
        out[self.offset_y:self.offset_y + resized.shape[0], self.offset_x:self.offset_x + resized.shape[1]] = resized
        return out

    def _check_shape(self, array: np.ndarray, width: int, height: int, what: str) -> None:
        if array.ndim != 2 or array.shape != (height, width):
            raise InputError(f"{what} has shape {array.shape}, expected ({height}, {width})")

    def image_to_preprocessed(self, image: np.ndarray) -> np.ndarray:
        """Flip, area-resize and pad a 2-D image (any dtype OpenCV resizes)."""
        self._check_shape(image, self.orig_width, self.orig_height, "image")
        if self.flipped:
            image = cv2.flip(image, 1)
        resized = cv2.resize(image, (self.resized_width, self.resized_height), interpolation=cv2.INTER_AREA)
        return self._pad(resized)

    def mask_to_preprocessed(self, mask: np.ndarray) -> np.ndarray:
        """Label map to preprocessed pixels, nearest neighbour (labels are never mixed), dtype kept."""
        self._check_shape(mask, self.orig_width, self.orig_height, "mask")
        if self.flipped:
            mask = mask[:, ::-1]
        rows = _nearest_index(self.orig_height, self.resized_height)
        cols = _nearest_index(self.orig_width, self.resized_width)
        return self._pad(np.ascontiguousarray(mask[np.ix_(rows, cols)]))

    def mask_to_original(self, mask: np.ndarray) -> np.ndarray:
        """Label map in preprocessed pixels (e.g. a prediction) back to the original image, nearest neighbour."""
        self._check_shape(mask, self.size, self.size, "preprocessed mask")
        crop = mask[self.offset_y:self.offset_y + self.resized_height,
                    self.offset_x:self.offset_x + self.resized_width]
        rows = _nearest_index(self.resized_height, self.orig_height)
        cols = _nearest_index(self.resized_width, self.orig_width)
        out = crop[np.ix_(rows, cols)]
        if self.flipped:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)


def to_uint8_full_range(image: np.ndarray) -> np.ndarray:
    """Stretch an 8/16-bit image's own min..max to 0..255.

    16-bit images are brought to 8 bits before CLAHE on purpose: OpenCV sets the clip limit per histogram bin
    (clip x tile area / number of bins), so a 16-bit radiograph that uses only a few thousand grey levels would
    be clipped far harder than the same image in 8 bits. Stretching first makes the result independent of the
    bit depth (a 16-bit copy of an 8-bit image preprocesses identically) and uses the whole output range.
    """
    if image.ndim != 2:
        raise InputError(f"expected a 2-D grayscale image, got shape {image.shape}")
    img = image.astype(np.float64)
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return np.zeros(image.shape, np.uint8)
    return np.rint((img - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def clahe(image8: np.ndarray, clip_limit: float, tile_grid: int) -> np.ndarray:
    """OpenCV CLAHE with a ``tile_grid`` x ``tile_grid`` grid (paper: contrast-limited adaptive equalisation)."""
    return cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile_grid), int(tile_grid))).apply(image8)


def _check_params(size: int, clip_limit: float, tile_grid: int) -> None:
    if int(size) < 8:
        raise ConfigError(f"preprocess.image_size: {size} is too small")
    if not clip_limit > 0:
        raise ConfigError(f"preprocess.clahe_clip_limit: must be > 0, got {clip_limit}")
    if int(tile_grid) < 1:
        raise ConfigError(f"preprocess.clahe_tile_grid: must be >= 1, got {tile_grid}")


def preprocess_image(image: np.ndarray, anterior_side: str, size: int = 512, clip_limit: float = 2.0,
                     tile_grid: int = 8) -> tuple[np.ndarray, Transform]:
    """Canonical orientation, CLAHE, aspect-preserving resize and zero padding; returns (uint8 image, Transform).

    CLAHE runs at full resolution, before the resize, as in the paper's order of steps.
    """
    _check_params(size, clip_limit, tile_grid)
    image = np.asarray(image)
    if image.ndim == 3:  # colour arrays handed in directly (files go through io.read_image)
        image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    side = str(anterior_side).strip().lower()
    tf = Transform.create(image.shape[1], image.shape[0], int(size), flipped=side == "right")
    enhanced = clahe(to_uint8_full_range(image), clip_limit, tile_grid)
    return tf.image_to_preprocessed(enhanced), tf


def transform_vertebrae(vertebrae: pd.DataFrame, transforms: dict[str, Transform]) -> pd.DataFrame:
    """vertebrae.csv with corners and heights in preprocessed pixels.

    The corner columns keep their meaning after a flip (``as_*`` is still the anterior-superior corner, now on
    the left); heights are recomputed from the mapped corners (a body without corners gets its height scaled).
    """
    out = vertebrae.copy()
    missing = sorted(set(out["image_id"]) - set(transforms))
    if missing:
        raise InputError(f"vertebrae.csv: image_id {missing[0]} is not in images.csv")
    for col in CORNER_COLUMNS + ["ha_px", "hp_px"]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for image_id, idx in out.groupby("image_id", sort=False).groups.items():
        tf = transforms[image_id]
        for corner in ("as", "ai", "ps", "pi"):
            cols = [f"{corner}_x", f"{corner}_y"]
            out.loc[idx, cols] = tf.to_preprocessed(out.loc[idx, cols].to_numpy())
        mean_scale = 0.5 * (tf.scale_x + tf.scale_y)
        for height, (a, b) in (("ha_px", ("as", "ai")), ("hp_px", ("ps", "pi"))):
            d = np.hypot(out.loc[idx, f"{a}_x"] - out.loc[idx, f"{b}_x"],
                         out.loc[idx, f"{a}_y"] - out.loc[idx, f"{b}_y"])
            out.loc[idx, height] = d.where(d.notna(), out.loc[idx, height] * mean_scale)
    return out


def _process_one(dataset, row, out_dir: Path, size: int, clip_limit: float, tile_grid: int) -> dict:
    image_id = row["image_id"]
    image_path, mask_path = dataset.image_path(image_id), dataset.mask_path(image_id)
    image = read_image(image_path)
    mask = read_mask(mask_path)
    if mask.shape != image.shape:
        raise InputError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but {image_path} is "
                         f"{image.shape[1]}x{image.shape[0]}")
    for key, actual in (("width", image.shape[1]), ("height", image.shape[0])):
        listed = row.get(key)
        if pd.notna(listed) and int(listed) != actual:
            raise InputError(f"{image_path}: {key} is {actual} but images.csv says {int(listed)}")
    try:
        pre, tf = preprocess_image(image, row.get("anterior_side", "unknown"), size, clip_limit, tile_grid)
    except InputError as err:
        raise InputError(f"{image_path}: {err}") from None
    write_png(out_dir / "images" / f"{image_id}.png", pre)
    write_png(out_dir / "masks" / f"{image_id}.png", tf.mask_to_preprocessed(mask))
    return {"image_id": image_id, **asdict(tf)}


def preprocess_dataset(dataset_dir: str | Path, out_dir: str | Path, size: int = 512, clip_limit: float = 2.0,
                       tile_grid: int = 8, threads: int = 1) -> pd.DataFrame:
    """Preprocess every image and mask of a canonical dataset into ``out_dir``; returns the transforms table.

    ``out_dir`` gets ``images/``, ``masks/``, ``vertebrae.csv`` and ``transforms.csv``. Everything is written
    into a temporary folder that becomes ``out_dir`` only when all images succeeded, so an unreadable image
    stops the step (InputError naming the file) without leaving partial output behind.
    """
    _check_params(size, clip_limit, tile_grid)
    dataset = load_dataset(dataset_dir)
    rows = dataset.images.to_dict("records")
    ids = [r["image_id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise InputError(f"{Path(dataset_dir) / 'images.csv'}: duplicate image_id {dup}")
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        records = []
        # cv2 releases the GIL in decode, CLAHE, resize and encode, so threads scale without pickling images.
        with ThreadPoolExecutor(max_workers=max(1, int(threads))) as pool:
            futures = [pool.submit(_process_one, dataset, row, tmp, size, clip_limit, tile_grid) for row in rows]
            try:
                for fut in as_completed(futures):
                    records.append(fut.result())
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        transforms = pd.DataFrame(records, columns=TRANSFORM_COLUMNS)
        transforms = transforms.set_index("image_id").loc[ids].reset_index()  # images.csv order, not finish order
        transforms["flipped"] = transforms["flipped"].astype(int)
        by_id = {r["image_id"]: Transform.from_row(r) for r in transforms.to_dict("records")}
        write_csv(tmp / "vertebrae.csv", transform_vertebrae(dataset.vertebrae, by_id))
        write_csv(tmp / "transforms.csv", transforms)
    log.info("preprocessed %d images of %s into %s (size %d)", len(ids), dataset_dir, out_dir, size)
    return transforms


def load_transforms(path: str | Path) -> dict[str, Transform]:
    """Read ``transforms.csv`` into ``{image_id: Transform}``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing")
    frame = pd.read_csv(path, dtype={"image_id": str})
    missing = [c for c in TRANSFORM_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return {r["image_id"]: Transform.from_row(r) for r in frame.to_dict("records")}
