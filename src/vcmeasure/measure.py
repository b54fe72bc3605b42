"""Vertebral compression of new radiographs: the clinician-facing measurement (issue 12).

The paper's reason to exist is "applying this algorithm to PACS" (Discussion): a new lateral radiograph goes
through the trained pipeline and comes out with the compression of each vertebral body. Per image:

1. read it (PNG / JPEG / TIFF / DICOM, :func:`vcmeasure.io.read_image`, :func:`vcmeasure.dicom.read_dicom`);
   the anterior side comes from the DICOM PatientOrientation when it has one, else from the caller (default
   left); the pixel spacing from DICOM (or the caller) gives heights in mm;
2. preprocess exactly as for training (:func:`vcmeasure.preprocess.preprocess_image`: canonical orientation,
   CLAHE, resize + pad; DESIGN §5);
3. segment with the selected architecture and label the bodies top to bottom (:mod:`vcmeasure.postprocess`);
4. cut the three-body windows and apply the paper's three acceptance conditions (:func:`vcmeasure.triplets.
   image_windows`, DESIGN §4 "Triplet acceptance");
5. VC of each accepted middle body by MRDN (paper Fig. 4) and, beside it, by image processing (paper Fig. 5,
   :func:`vcmeasure.baseline.fig5_measure`); Genant grade and the surgical flag (VC > 40) from
   :mod:`vcmeasure.measures` (Eq. 1 definitions);
6. corners and heights are mapped back to the original pixels (:class:`vcmeasure.preprocess.Transform`) and
   written as JSON, one CSV row per level, and an overlay PNG in the original image's coordinates.

The models travel as a bundle folder written by :func:`export_models` (rule ``export_models``):
``segmentation.keras``, ``mrdn.keras`` and ``manifest.json`` (preprocessing parameters, segmentation
threshold, window size, selected architecture, regression target scaling, measure name, vcmeasure version).
:func:`measure_image` takes the segmenter and regressor as plain callables, so the geometry -> VC path can be
tested with ground-truth label maps. :func:`bench_measure` times the whole path (latency per radiograph, the
share spent outside the networks, batch throughput).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from . import __version__
from .baseline import fig5_measure, window_map
from .errors import ConfigError, InputError
from .geometry import CORNER_NAMES, anterior_height, posterior_height
from .io import IMAGE_SUFFIXES, atomic_dir, is_dicom, read_image, read_json, write_csv, write_png, write_text
from .measures import genant_grade, is_surgical
from .postprocess import probability_to_labels
from .preprocess import Transform, preprocess_image, to_uint8_full_range
from .triplets import image_windows

log = logging.getLogger(__name__)

MEASURE_NAME = "vc_anterior"  # DESIGN §3: lateral views measure anterior-height VC
MANIFEST = "manifest.json"
SEGMENTATION_FILE = "segmentation.keras"
REGRESSION_FILE = "mrdn.keras"
SIDES = ("left", "right")
CSV_COLUMNS = ["image_id", "file", "status", "body", "window", "vc", "vc_method", "vc_mrdn", "vc_image_processing",
               "genant_grade", "surgical", "ha_px", "hp_px", "ha_mm", "hp_mm", "ha_above_px", "ha_below_px",
               "pixel_spacing_mm", "anterior_side", "measure", "reason"]
# BGR colours of the overlay: Genant grade 0..3 (green, yellow, orange, red), other bodies, corners
GRADE_COLOURS = {0: (80, 200, 60), 1: (0, 220, 255), 2: (0, 140, 255), 3: (40, 40, 230)}
BODY_COLOUR = (200, 170, 60)
ANTERIOR_COLOUR = (255, 60, 255)
POSTERIOR_COLOUR = (255, 255, 0)
REJECTED_COLOUR = (170, 170, 170)


# ----------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class MeasureParams:
    """What inference must share with training (config keys in brackets)."""

    image_size: int = 512  # preprocess.image_size
    clahe_clip_limit: float = 2.0  # preprocess.clahe_clip_limit
    clahe_tile_grid: int = 8  # preprocess.clahe_tile_grid
    threshold: float = 0.5  # segmentation.threshold
    min_component_px: int = 30  # segmentation.min_component_px
    window_size: int = 128  # triplets.window_size
    measure: str = MEASURE_NAME

    @classmethod
    def from_manifest(cls, manifest: dict, source: str | Path = MANIFEST) -> MeasureParams:
        params = manifest.get("params")
        if not isinstance(params, dict):
            raise InputError(f"{source}: no 'params' object")
        missing = [f.name for f in fields(cls) if f.name not in params]
        if missing:
            raise InputError(f"{source}: params lack {', '.join(missing)}")
        casts = {"int": int, "float": float, "str": str}
        try:
            return cls(**{f.name: casts[f.type](params[f.name]) for f in fields(cls)})
        except (TypeError, ValueError) as err:
            raise InputError(f"{source}: bad params value ({err})") from None


# ----------------------------------------------------------------------------------------------- models
def _network_seconds(obj) -> float:
    return float(getattr(obj, "network_seconds", 0.0))


class KerasSegmenter:
    """Preprocessed uint8 image(s) -> label map(s), bodies 1..K top to bottom (the ``predict`` rule's path)."""

    def __init__(self, model, threshold: float, min_component_px: int):
        self.model, self.threshold, self.min_component_px = model, float(threshold), int(min_component_px)
        self.network_seconds = 0.0  # time inside the network only (benchmark)

    def batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        from .segmentation import to_unit

        x = np.stack([to_unit(np.asarray(im)) for im in images])[..., None]
        t0 = time.perf_counter()
        prob = np.asarray(self.model.predict_on_batch(x))
        self.network_seconds += time.perf_counter() - t0
        return [probability_to_labels(p, self.threshold, self.min_component_px) for p in prob]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.batch([image])[0]


class KerasRegressor:
    """Three-body windows (n, S, S, 1) in [0, 1] -> VC percent (n,).

    The regression models de-standardise inside their last layer (``to_vc``, :mod:`vcmeasure.models.
    regression`); a model without it gets the manifest's scaling applied here, so predictions are always in
    VC percent as in training.
    """

    def __init__(self, model, target_mean: float = 0.0, target_std: float = 1.0, in_model: bool = True):
        self.model, self.mean, self.std, self.in_model = model, float(target_mean), float(target_std), in_model
        self.network_seconds = 0.0

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        windows = np.asarray(windows, np.float32)
        if len(windows) == 0:
            return np.zeros(0)
        t0 = time.perf_counter()
        out = np.asarray(self.model.predict_on_batch(windows), float).reshape(-1)
        self.network_seconds += time.perf_counter() - t0
        return out if self.in_model else out * self.std + self.mean


@dataclass
class Bundle:
    """Everything :func:`measure_image` needs besides the image."""

    segmenter: Callable[[np.ndarray], np.ndarray]
    regressor: Callable[[np.ndarray], np.ndarray] | None = None
    params: MeasureParams = field(default_factory=MeasureParams)
    manifest: dict = field(default_factory=dict)

    @property
    def network_seconds(self) -> float:
        return _network_seconds(self.segmenter) + _network_seconds(self.regressor)

    def reset_timers(self) -> None:
        for part in (self.segmenter, self.regressor):
            if hasattr(part, "network_seconds"):
                part.network_seconds = 0.0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _target_scaling(model) -> dict:
    """The regression target's mean and SD as the model's ``to_vc`` layer applies them."""
    try:
        cfg = model.get_layer("to_vc").get_config()
    except ValueError:
        return {"in_model": False, "mean": 0.0, "std": 1.0}
    return {"in_model": True, "mean": float(cfg["offset"]), "std": float(cfg["scale"])}


def export_models(selected_txt: str | Path, segmentation_model: str | Path, regression_model: str | Path,
                  out_dir: str | Path, *, image_size: int, clahe_clip_limit: float, clahe_tile_grid: int,
                  threshold: float, min_component_px: int, window_size: int, regression_name: str = "mrdn",
                  measure: str = MEASURE_NAME) -> dict:
    """Rule ``export_models``: copy the selected segmentation model and MRDN into ``out_dir`` with a manifest.

    The models are loaded once to check that they fit the configuration (input sizes) and to read the
    regression target scaling; the folder is replaced atomically. Returns the manifest.
    """
    import keras

    from .models import regression as _reg  # noqa: F401 - registers the custom loss for loading
    from .models import segmentation as _seg  # noqa: F401

    selected_txt, seg_path, reg_path = Path(selected_txt), Path(segmentation_model), Path(regression_model)
    for p in (selected_txt, seg_path, reg_path):
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    arch = selected_txt.read_text().strip()
    if not arch:
        raise InputError(f"{selected_txt}: empty (no selected architecture)")
    seg = keras.models.load_model(seg_path, compile=False)
    reg = keras.models.load_model(reg_path, compile=False)
    if tuple(seg.input_shape[1:3]) != (image_size, image_size):
        raise ConfigError(f"preprocess.image_size: {image_size}, but {seg_path} expects {seg.input_shape[1:3]}")
    if tuple(reg.input_shape[1:3]) != (window_size, window_size):
        raise ConfigError(f"triplets.window_size: {window_size}, but {reg_path} expects {reg.input_shape[1:3]}")
    params = MeasureParams(int(image_size), float(clahe_clip_limit), int(clahe_tile_grid), float(threshold),
                           int(min_component_px), int(window_size), str(measure))
    manifest = {
        "vcmeasure_version": __version__,
        "keras_backend": keras.backend.backend(),
        "params": {f.name: getattr(params, f.name) for f in fields(params)},
        "segmentation": {"architecture": arch, "file": SEGMENTATION_FILE, "source": str(seg_path),
                         "sha256": _sha256(seg_path)},
        "regression": {"model": regression_name, "file": REGRESSION_FILE, "source": str(reg_path),
                       "sha256": _sha256(reg_path), "target": _target_scaling(reg)},
    }
    with atomic_dir(out_dir) as tmp:
        shutil.copyfile(seg_path, tmp / SEGMENTATION_FILE)
        shutil.copyfile(reg_path, tmp / REGRESSION_FILE)
        write_text(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log.info("exported %s + %s into %s", arch, regression_name, out_dir)
    return manifest


def read_manifest(models_dir: str | Path) -> dict:
    path = Path(models_dir) / MANIFEST
    manifest = read_json(path, "--models must be a folder written by rule export_models")
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: not a JSON object")
    return manifest


def load_models(models_dir: str | Path, threads: int | None = None) -> Bundle:
    """Load a bundle written by :func:`export_models` (Keras models wrapped as segmenter and regressor)."""
    models_dir = Path(models_dir)
    manifest = read_manifest(models_dir)
    params = MeasureParams.from_manifest(manifest, models_dir / MANIFEST)
    seg_file = models_dir / manifest.get("segmentation", {}).get("file", SEGMENTATION_FILE)
    reg_info = manifest.get("regression", {})
    reg_file = models_dir / reg_info.get("file", REGRESSION_FILE)
    for p in (seg_file, reg_file):
        if not p.is_file():
            raise InputError(f"{p}: no such file (listed in {models_dir / MANIFEST})")
    import keras

    from .models import regression as _reg  # noqa: F401 - registers the custom loss for loading
    from .models import segmentation as _seg  # noqa: F401
    from .segmentation import limit_threads

    limit_threads(threads)
    target = reg_info.get("target", {})
    segmenter = KerasSegmenter(keras.models.load_model(seg_file, compile=False), params.threshold,
                               params.min_component_px)
    regressor = KerasRegressor(keras.models.load_model(reg_file, compile=False), target.get("mean", 0.0),
                               target.get("std", 1.0), bool(target.get("in_model", True)))
    return Bundle(segmenter, regressor, params, manifest)


# ----------------------------------------------------------------------------------------------- inputs
@dataclass
class LoadedImage:
    path: Path
    image_id: str
    pixels: np.ndarray
    pixel_spacing_mm: float | None
    anterior_side: str
    side_source: str  # dicom / option / default


def load_input(path: str | Path, anterior_side: str | None = None, pixel_spacing_mm: float | None = None,
               image_id: str | None = None) -> LoadedImage:
    """Read one radiograph; DICOM brings its own spacing and (PatientOrientation) anterior side.

    ``anterior_side`` / ``pixel_spacing_mm`` apply where the file does not say (default side: left).
    """
    path = Path(path)
    if anterior_side is not None and anterior_side not in SIDES:
        raise ConfigError(f"--anterior-side: must be left or right, got {anterior_side!r}")
    spacing, side, source = pixel_spacing_mm, anterior_side or "left", "option" if anterior_side else "default"
    if is_dicom(path):
        from .dicom import read_dicom

        dcm = read_dicom(path)
        pixels = dcm.pixels
        spacing = dcm.pixel_spacing_mm if dcm.pixel_spacing_mm else pixel_spacing_mm
        if dcm.anterior_side in SIDES:
            side, source = dcm.anterior_side, "dicom"
    else:
        pixels = read_image(path)
    if min(pixels.shape) < 8:
        raise InputError(f"{path}: image of {pixels.shape[1]}x{pixels.shape[0]} px is too small to measure")
    return LoadedImage(path, image_id or path.stem, pixels, spacing, side, source)


def collect_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """Files to measure (folders expand to their images, sorted) and one error line per missing path."""
    files, errors = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                           and (f.suffix.lower() in IMAGE_SUFFIXES or (not f.suffix and is_dicom(f))))
            if not found:
                errors.append(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            errors.append(f"{p}: no such file")
    return files, errors


def output_stems(files: Sequence[Path]) -> list[str]:
    """One output name per input: the file stem made safe, duplicates numbered."""
    stems, seen = [], {}
    for f in files:
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", f.stem) or "image"
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        stems.append(stem if n == 0 else f"{stem}_{n + 1}")
    return stems


# ----------------------------------------------------------------------------------------------- results
@dataclass
class BodyResult:
    """One segmented body in original pixels (corners AS, AI, PS, PI or None when not found)."""

    body: int
    corners: np.ndarray | None
    ha_px: float
    hp_px: float
    ha_mm: float
    hp_mm: float
    issue: str  # condition (1) finding (split / merged / fragment), "" when none


@dataclass
class LevelResult:
    """One three-body window around a middle body."""

    body: int
    window: str
    status: str  # measured / rejected
    reason: str = ""
    vc_mrdn: float = math.nan
    vc_image_processing: float = math.nan
    vc: float = math.nan
    vc_method: str = ""
    genant_grade: int | None = None
    surgical: bool | None = None
    ha_px: float = math.nan
    hp_px: float = math.nan
    ha_mm: float = math.nan
    hp_mm: float = math.nan
    ha_above_px: float = math.nan
    ha_below_px: float = math.nan


@dataclass
class ImageResult:
    image_id: str
    file: str
    status: str  # measured / not_measurable / error
    reason: str
    width: int = 0
    height: int = 0
    anterior_side: str = ""
    side_source: str = ""
    pixel_spacing_mm: float | None = None
    measure: str = MEASURE_NAME
    bodies: list[BodyResult] = field(default_factory=list)
    levels: list[LevelResult] = field(default_factory=list)
    label_map: np.ndarray | None = None  # components 1..K in ORIGINAL pixels (for the overlay)

    def to_dict(self) -> dict:
        def clean(v):
            if isinstance(v, float | np.floating):
                return None if not math.isfinite(float(v)) else round(float(v), 4)
            if isinstance(v, np.integer | np.bool_):
                return v.item()
            return v

        bodies = [{"body": b.body, "issue": b.issue or None,
                   "corners": None if b.corners is None else
                   {n: [round(float(x), 2), round(float(y), 2)] for n, (x, y) in zip(CORNER_NAMES, b.corners,
                                                                                     strict=True)},
                   **{k: clean(getattr(b, k)) for k in ("ha_px", "hp_px", "ha_mm", "hp_mm")}} for b in self.bodies]
        levels = [{f.name: clean(getattr(lv, f.name)) for f in fields(lv)} for lv in self.levels]
        return {"image_id": self.image_id, "file": self.file, "status": self.status, "reason": self.reason or None,
                "measure": self.measure, "width": self.width, "height": self.height,
                "anterior_side": self.anterior_side, "anterior_side_source": self.side_source,
                "pixel_spacing_mm": clean(self.pixel_spacing_mm), "coordinates": "original image pixels",
                "bodies": bodies, "levels": levels}

    def rows(self) -> list[dict]:
        """measurements.csv rows: one per window, or one for an image without any window."""
        base = {"image_id": self.image_id, "file": self.file, "pixel_spacing_mm": self.pixel_spacing_mm,
                "anterior_side": self.anterior_side, "measure": self.measure}
        if not self.levels:
            return [{**base, "status": self.status, "reason": self.reason}]
        out = []
        for lv in self.levels:
            row = {**base, **{f.name: getattr(lv, f.name) for f in fields(lv)}}
            row["surgical"] = None if lv.surgical is None else int(lv.surgical)
            out.append(row)
        return out


def _mm(px: float, spacing: float | None) -> float:
    return px * spacing if spacing else math.nan


def _analyse(label_map: np.ndarray, tf: Transform, params: MeasureParams, image_id: str,
             spacing: float | None) -> tuple[list[BodyResult], list[LevelResult], list[np.ndarray], object, str]:
    """Bodies, windows (acceptance checks) and MRDN crops of a preprocessed label map; heights in original px."""
    comps, rows, crops, rejections, _ = image_windows(image_id, label_map, None, params.window_size)
    bodies = []
    for i, b in enumerate(comps.bodies, start=1):
        corners = None if b.corners is None else tf.to_original(b.corners)
        ha = anterior_height(corners) if corners is not None else math.nan
        hp = posterior_height(corners) if corners is not None else math.nan
        bodies.append(BodyResult(i, corners, ha, hp, _mm(ha, spacing), _mm(hp, spacing),
                                 comps.split_merged.get(i, "")))
    levels: list[LevelResult] = []
    image_reason = ""
    for rej in rejections:
        if not rej["window"]:  # image level: fewer than three bodies
            image_reason = rej["reason"]
            continue
        middle = int(str(rej["labels"]).split("-")[1])
        levels.append(LevelResult(middle, rej["labels"], "rejected", f"condition {rej['condition']}: {rej['reason']}"))
    for row in rows:
        m = int(row["middle_label"])
        above, mid, below = bodies[m - 2], bodies[m - 1], bodies[m]
        ip = fig5_measure(window_map(comps.comp_map, m))
        levels.append(LevelResult(m, f"{m - 1}-{m}-{m + 1}", "measured",
                                  vc_image_processing=ip.vc if ip is not None else math.nan,
                                  ha_px=mid.ha_px, hp_px=mid.hp_px, ha_mm=mid.ha_mm, hp_mm=mid.hp_mm,
                                  ha_above_px=above.ha_px, ha_below_px=below.ha_px))
    levels.sort(key=lambda lv: lv.body)
    measured = [lv for lv in levels if lv.status == "measured"]
    crops_by_body = dict(zip([int(r["middle_label"]) for r in rows], crops, strict=True))
    ordered_crops = [crops_by_body[lv.body] for lv in measured]
    if not image_reason and not measured:
        image_reason = (f"{len(comps)} bodies found, but no window of three passed the acceptance checks "
                        f"({len(levels)} rejected)")
    return bodies, levels, ordered_crops, comps, image_reason


def _finish(levels: list[LevelResult], vc_mrdn: np.ndarray | None) -> None:
    """Fill VC (MRDN when available, else image processing), Genant grade and the surgical flag."""
    measured = [lv for lv in levels if lv.status == "measured"]
    for k, lv in enumerate(measured):
        if vc_mrdn is not None:
            lv.vc_mrdn = float(vc_mrdn[k])
        lv.vc, lv.vc_method = ((lv.vc_mrdn, "mrdn") if math.isfinite(lv.vc_mrdn)
                               else (lv.vc_image_processing, "image_processing"))
        if math.isfinite(lv.vc):
            lv.genant_grade = int(genant_grade(lv.vc))
            lv.surgical = bool(is_surgical(lv.vc))
        else:
            lv.reason = "no VC: the image-processing vertices were not found and no regressor was given"


def _prepare(image: np.ndarray, anterior_side: str, params: MeasureParams) -> tuple[np.ndarray, Transform]:
    return preprocess_image(image, anterior_side, params.image_size, params.clahe_clip_limit, params.clahe_tile_grid)


def _assemble(image: np.ndarray, tf: Transform, label_map: np.ndarray, params: MeasureParams, *, image_id: str,
              source: str, anterior_side: str, side_source: str, pixel_spacing_mm: float | None):
    label_map = np.asarray(label_map)
    if label_map.shape != (params.image_size, params.image_size):
        raise InputError(f"{source or image_id}: segmenter returned shape {label_map.shape}, expected "
                         f"({params.image_size}, {params.image_size})")
    bodies, levels, crops, comps, reason = _analyse(label_map, tf, params, image_id, pixel_spacing_mm)
    result = ImageResult(image_id, source, "measured" if crops else "not_measurable", reason,
                         int(image.shape[1]), int(image.shape[0]), anterior_side, side_source, pixel_spacing_mm,
                         params.measure, bodies, levels, tf.mask_to_original(comps.comp_map.astype(np.int32)))
    return result, crops


def measure_image(image: np.ndarray, *, segmenter: Callable[[np.ndarray], np.ndarray],
                  regressor: Callable[[np.ndarray], np.ndarray] | None = None,
                  params: MeasureParams | None = None, anterior_side: str = "left",
                  pixel_spacing_mm: float | None = None, image_id: str = "image", source: str = "",
                  side_source: str = "option") -> ImageResult:
    """Measure one radiograph (2-D array in its original orientation and size).

    ``segmenter(preprocessed uint8 (S, S)) -> label map (S, S)`` (bodies > 0); ``regressor(windows (n, w, w,
    1)) -> VC (n,)`` or None (then VC is the image-processing value). Corners and heights in the result are in
    the original image's pixels (mm when ``pixel_spacing_mm`` is given).
    """
    params = params or MeasureParams()
    pre, tf = _prepare(image, anterior_side, params)
    result, crops = _assemble(image, tf, segmenter(pre), params, image_id=image_id, source=source,
                              anterior_side=anterior_side, side_source=side_source, pixel_spacing_mm=pixel_spacing_mm)
    vc = regressor(np.stack(crops)[..., None]) if regressor is not None and crops else None
    _finish(result.levels, vc)
    return result


def measure_batch(images: Sequence[LoadedImage], bundle: Bundle) -> list[ImageResult]:
    """Measure several loaded images with one segmentation and one regression network call."""
    params = bundle.params
    prepared = [_prepare(li.pixels, li.anterior_side, params) for li in images]
    if hasattr(bundle.segmenter, "batch"):
        maps = bundle.segmenter.batch([pre for pre, _ in prepared]) if prepared else []
    else:
        maps = [bundle.segmenter(pre) for pre, _ in prepared]
    results, crops = [], []
    for li, (_, tf), label_map in zip(images, prepared, maps, strict=True):
        res, c = _assemble(li.pixels, tf, label_map, params, image_id=li.image_id, source=str(li.path),
                           anterior_side=li.anterior_side, side_source=li.side_source,
                           pixel_spacing_mm=li.pixel_spacing_mm)
        results.append(res)
        crops.append(c)
    flat = [c for cs in crops for c in cs]
    vc = bundle.regressor(np.stack(flat)[..., None]) if bundle.regressor is not None and flat else None
    start = 0
    for res, cs in zip(results, crops, strict=True):
        _finish(res.levels, None if vc is None else vc[start:start + len(cs)])
        start += len(cs)
    return results


# ----------------------------------------------------------------------------------------------- overlay
def _text_box(canvas, text, org, scale, thickness, colour) -> None:
    """Text on a dark box so it stays readable over bone and soft tissue alike."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = org
    pad = max(1, thickness)
    cv2.rectangle(canvas, (x - pad, y - h - pad), (x + w + pad, y + base + pad), (0, 0, 0), cv2.FILLED)
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def draw_overlay(image: np.ndarray, result: ImageResult) -> np.ndarray:
    """BGR overlay in the original image's pixels: body outlines, corners (anterior magenta, posterior cyan),
    the anterior height, and per measured level "#k VC x% G g" coloured by Genant grade (red: surgical)."""
    canvas = cv2.cvtColor(to_uint8_full_range(np.asarray(image)), cv2.COLOR_GRAY2BGR)
    h, w = canvas.shape[:2]
    unit = max(1.0, min(h, w) / 450.0)  # font and lines grow with the image so they stay legible
    scale, thick = 0.42 * unit, max(1, int(round(unit)))
    by_body = {lv.body: lv for lv in result.levels}
    labels = result.label_map if result.label_map is not None else np.zeros((h, w), np.int32)
    for b in result.bodies:
        lv = by_body.get(b.body)
        measured = lv is not None and lv.status == "measured" and lv.genant_grade is not None
        colour = GRADE_COLOURS[lv.genant_grade] if measured else BODY_COLOUR
        mask = (labels == b.body).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, colour, thick + (1 if measured else 0), cv2.LINE_AA)
        if b.corners is not None:
            pts = np.rint(b.corners).astype(int)
            cv2.line(canvas, tuple(pts[0]), tuple(pts[1]), ANTERIOR_COLOUR, thick, cv2.LINE_AA)
            for k, p in enumerate(pts):
                cv2.circle(canvas, tuple(p), thick + 1, ANTERIOR_COLOUR if k < 2 else POSTERIOR_COLOUR,
                           cv2.FILLED, cv2.LINE_AA)
        if lv is None:
            continue
        if measured:
            text = f"#{b.body} VC {lv.vc:.1f}% G{lv.genant_grade}" + (" surgical" if lv.surgical else "")
            tcolour = GRADE_COLOURS[lv.genant_grade]
        else:
            text, tcolour = f"#{b.body} not measured", REJECTED_COLOUR
        ys, xs = np.nonzero(mask)
        if not len(xs):
            continue
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        gap = 3 * thick
        # beside the anterior wall (soft tissue: least clutter); the other side when it would leave the image
        if result.anterior_side == "right":
            x = xs.max() + gap if xs.max() + gap + tw < w else xs.min() - gap - tw
        else:
            x = xs.min() - gap - tw if xs.min() - gap - tw >= 0 else xs.max() + gap
        x = int(np.clip(x, 0, max(0, w - tw)))
        y = int(np.clip(ys.mean() + th / 2, th + gap, h - gap))
        _text_box(canvas, text, (x, y), scale, thick, tcolour)
    method = next((lv.vc_method for lv in result.levels if lv.vc_method), "")
    header = f"{result.image_id}: {result.status.replace('_', ' ')}" + (f" (VC by {method})" if method else "")
    (_, hh), _ = cv2.getTextSize(header, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    _text_box(canvas, header, (2 * thick, hh + 2 * thick), scale, thick, (255, 255, 255))
    return canvas


# ----------------------------------------------------------------------------------------------- files
def write_outputs(result: ImageResult, image: np.ndarray, out_dir: Path, stem: str) -> None:
    """``<stem>.json`` and ``<stem>_overlay.png``."""
    payload = {**result.to_dict(), "overlay": f"{stem}_overlay.png"}
    write_text(out_dir / f"{stem}.json", json.dumps(payload, indent=2) + "\n")
    write_png(out_dir / f"{stem}_overlay.png", draw_overlay(image, result))


def measure_files(paths: Sequence[str | Path], out_dir: str | Path, bundle: Bundle, *,
                  anterior_side: str | None = None, pixel_spacing_mm: float | None = None,
                  batch_size: int = 8, on_error: Callable[[str], None] | None = None) -> tuple[list[ImageResult],
                                                                                              list[str]]:
    """Measure every image (folders expand to their images) into ``out_dir``; return (results, error lines).

    A file that cannot be read or processed gets one error line (passed to ``on_error`` as it happens) and a
    ``status=error`` row in ``measurements.csv``; the other files are still measured.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files, errors = collect_inputs(paths)
    report = on_error or (lambda line: log.error("%s", line))
    for line in errors:
        report(line)
    stems = output_stems(files)
    results: list[ImageResult] = []
    rows: list[dict] = []
    for start in range(0, len(files), max(1, int(batch_size))):
        loaded = []
        for f, stem in zip(files[start:start + batch_size], stems[start:start + batch_size], strict=True):
            try:
                loaded.append((load_input(f, anterior_side, pixel_spacing_mm, image_id=stem), stem))
            except InputError as err:
                errors.append(str(err))
                report(str(err))
                rows.append({"image_id": stem, "file": str(f), "status": "error", "reason": str(err)})
        try:
            batch = measure_batch([li for li, _ in loaded], bundle)
        except InputError:  # one bad image should not take the batch down: retry one by one
            batch = []
            for li, _ in loaded:
                try:
                    batch += measure_batch([li], bundle)
                except InputError as err:
                    batch.append(ImageResult(li.image_id, str(li.path), "error", str(err)))
                    errors.append(str(err))
                    report(str(err))
        for (li, stem), res in zip(loaded, batch, strict=True):
            if res.status != "error":
                write_outputs(res, li.pixels, out_dir, stem)
            results.append(res)
            rows += res.rows()
    table = pd.DataFrame(rows, columns=CSV_COLUMNS)
    for col in ("body", "genant_grade", "surgical"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype("Int64")
    write_csv(out_dir / "measurements.csv", table)
    n_ok = sum(r.status == "measured" for r in results)
    log.info("%d files: %d measured, %d not measurable, %d errors", len(files), n_ok,
             sum(r.status == "not_measurable" for r in results), len(errors))
    return results, errors


def measure_folder(images: str | Path, models_dir: str | Path, out_dir: str | Path, *,
                   anterior_side: str | None = None, batch_size: int = 8, threads: int | None = None) -> list:
    """Rule ``measure``: every image of a folder; unreadable files fail the rule after the others are done."""
    bundle = load_models(models_dir, threads=threads)
    results, errors = measure_files([images], out_dir, bundle, anterior_side=anterior_side, batch_size=batch_size)
    if errors:
        raise InputError(f"{len(errors)} input(s) could not be measured, first: {errors[0]} "
                         f"(all listed in {Path(out_dir) / 'measurements.csv'})")
    return results


# ----------------------------------------------------------------------------------------------- benchmark
def bench_measure(models_dir: str | Path | Bundle, images: Sequence[str | Path], repeats: int = 3,
                  batch_size: int = 8, threads: int | None = None) -> dict:
    """Latency per radiograph end to end (read, preprocess, segment, windows, MRDN, overlay, JSON/PNG written),
    the share of it spent outside the networks, and throughput for the whole list as batches.

    ``models_dir`` is a bundle folder (or a loaded :class:`Bundle`). Not a test: figures depend on the machine.
    Medians over ``repeats`` after one warm-up image. The result has the shape
    :func:`vcmeasure.benchmark.write_results` writes (``name``, ``title``, ``rows``).
    """
    import tempfile

    files, errors = collect_inputs(images)
    if errors or not files:
        raise InputError(errors[0] if errors else "bench_measure: no images given")
    t0 = time.perf_counter()
    bundle = models_dir if isinstance(models_dir, Bundle) else load_models(models_dir, threads=threads)
    load_s = time.perf_counter() - t0
    latencies, outside = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        measure_batch([load_input(files[0])], bundle)  # warm-up: graph tracing is not per-radiograph cost
        for _ in range(max(1, repeats)):
            for f in files:
                bundle.reset_timers()
                t0 = time.perf_counter()
                li = load_input(f)
                res = measure_batch([li], bundle)[0]
                write_outputs(res, li.pixels, tmp, li.image_id)
                dt = time.perf_counter() - t0
                latencies.append(dt)
                outside.append(1.0 - bundle.network_seconds / dt)
        throughput = []
        for r in range(max(1, repeats)):
            t0 = time.perf_counter()
            measure_files(files, tmp / f"batch{r}", bundle, batch_size=batch_size)
            throughput.append(len(files) / (time.perf_counter() - t0))
    lat = np.array(latencies)
    row = {"n_images": len(files), "repeats": int(repeats), "image_size": bundle.params.image_size,
           "window_size": bundle.params.window_size, "batch_size": int(batch_size),
           "model_load_s": round(load_s, 3), "latency_median_s": round(float(np.median(lat)), 4),
           "latency_p90_s": round(float(np.percentile(lat, 90)), 4),
           "outside_networks_share": round(float(np.median(outside)), 3),
           "throughput_images_per_s": round(float(np.median(throughput)), 3)}
    return {"name": "measure", "title": "vcmeasure measure: latency per radiograph and batch throughput",
            "note": "End to end per image: read, preprocess, segment, windows with the acceptance checks, MRDN, "
                    "image-processing VC, overlay and JSON written. Share outside networks = 1 - time inside "
                    "the two Keras predict calls / latency.", "rows": [row], **row}
