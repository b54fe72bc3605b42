"""DICOM radiographs as plain 2-D arrays (issue 10; DESIGN §3 ``images.csv`` fields).

Only what the canonical dataset needs is taken from a DICOM object: the pixels (after the modality rescale
slope/intercept, MONOCHROME1 inverted so that bone is bright as in MONOCHROME2), the pixel spacing
(PixelSpacing, else ImagerPixelSpacing; the mean of the row and column spacing) and the anterior side from
PatientOrientation when the file has it. No other tag value ever leaves this module, so patient data
(name, id, birth date, ...) cannot reach a dataset. Multi-frame objects and objects without an image are
refused with an :class:`~vcmeasure.errors.InputError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

try:
    from pydicom.multival import MultiValue
except ImportError:  # pragma: no cover - pydicom is in the lock; keeps io importable without it
    MultiValue = list


@dataclass
class DicomImage:
    pixels: np.ndarray  # 2-D uint8 or uint16
    pixel_spacing_mm: float | None
    anterior_side: str  # left / right / unknown (DESIGN §3 anterior_side)


def anterior_side_from_orientation(orientation) -> str:
    """Anterior side from PatientOrientation (row direction, column direction).

    The first value is the patient direction towards which the image rows run (left to right on screen):
    'A' there means anterior lies to the right of the image, 'P' means it lies to the left. Oblique
    values (e.g. 'AF') count by their letters; anything else (AP views: 'L'/'R') gives 'unknown'.
    """
    values = list(orientation) if orientation is not None and not isinstance(orientation, str) else (
        str(orientation or "").split("\\"))
    row = str(values[0]).upper() if values else ""
    if "A" in row and "P" not in row:
        return "right"
    if "P" in row and "A" not in row:
        return "left"
    return "unknown"


def _spacing(ds) -> float | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is None:
            continue
        try:
            numbers = [float(v) for v in value] if isinstance(value, (MultiValue, list, tuple)) else [float(value)]
        except (TypeError, ValueError):
            continue
        numbers = [v for v in numbers if np.isfinite(v) and v > 0]
        if numbers:
            return float(np.mean(numbers))
    return None


def _to_unsigned(values: np.ndarray, lo: float, hi: float, invert: bool, small: bool) -> np.ndarray:
    """Shift the rescaled values onto [0, hi - lo] (inverted for MONOCHROME1) as uint8 or uint16."""
    out = (hi - values) if invert else (values - lo)
    if hi - lo > 65535:  # deeper than 16 bits: scale down rather than clip
        out = out * (65535.0 / (hi - lo))
    out = np.rint(np.clip(out, 0, 65535))
    return out.astype(np.uint8 if small and hi - lo <= 255 else np.uint16)


def read_dicom(path: str | Path) -> DicomImage:
    """Read a single-frame DICOM image; anything else raises :class:`InputError` naming ``path``."""
    import pydicom  # lazily: only DICOM input needs it
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError, TypeError) as err:
        raise InputError(f"{path}: not a readable DICOM file ({type(err).__name__})") from None
    if "PixelData" not in ds:
        raise InputError(f"{path}: DICOM object has no image (no PixelData); only radiographs can be imported")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise InputError(f"{path}: multi-frame DICOM ({frames} frames) is not supported; export single frames")
    try:
        stored = ds.pixel_array
    except Exception as err:  # pydicom raises many types (missing decoder, truncated data, ...)
        # only the (standard, non-personal) transfer syntax is named: pydicom's message may quote tag values
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "unknown transfer syntax")
        raise InputError(f"{path}: DICOM pixel data cannot be decoded ({name}; {type(err).__name__}); "
                         "a decoder plugin (e.g. pylibjpeg) may be missing") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if stored.ndim == 3 and stored.shape[-1] in (3, 4) and photometric in ("RGB", "YBR_FULL", "YBR_FULL_422"):
        import cv2
        from pydicom.pixels import convert_color_space

        rgb = convert_color_space(stored, photometric, "RGB") if photometric != "RGB" else stored
        gray = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        return DicomImage(gray, _spacing(ds), anterior_side_from_orientation(ds.get("PatientOrientation")))
    if stored.ndim != 2:
        raise InputError(f"{path}: DICOM image is not 2-D grayscale (shape {stored.shape}, {photometric})")
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    # the nominal stored range (not the data range) keeps intensities comparable between files
    bits = int(ds.get("BitsStored", stored.dtype.itemsize * 8) or 8)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    s_lo, s_hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    ends = sorted((s_lo * slope + intercept, s_hi * slope + intercept))
    values = stored.astype(np.float64) * slope + intercept
    small = bits <= 8 and slope == 1 and intercept == 0 and not signed
    pixels = _to_unsigned(values, ends[0], ends[1], photometric == "MONOCHROME1", small)
    return DicomImage(pixels, _spacing(ds), anterior_side_from_orientation(ds.get("PatientOrientation")))
