"""Image and table I/O with atomic writes (a failed job leaves no half-written output that looks valid).

Images are read as single-channel arrays whatever the source: 8/16-bit grayscale, RGB(A) and palette PNGs,
JPEG, TIFF and (through :mod:`vcmeasure.dicom`) DICOM. Anything unreadable raises :class:`InputError` naming
the file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_dicom(path: str | Path) -> bool:
    """DICOM by suffix or by the 'DICM' magic at byte 128 (DICOM files often have no suffix)."""
    path = Path(path)
    if path.suffix.lower() in {".dcm", ".dicom"}:
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def read_image(path: str | Path) -> np.ndarray:
    """Read any supported image as a 2-D uint8/uint16 array; colour and palette images become gray."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if is_dicom(path):
        from .dicom import read_dicom  # imported lazily: pydicom is only needed for DICOM input

        return read_dicom(path).pixels
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{path}: not a readable image (corrupt or unsupported format)")
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = img[:, :, :3]
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if img.dtype not in (np.uint8, np.uint16):
        if np.issubdtype(img.dtype, np.floating):
            lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
            img = ((img - lo) / (hi - lo or 1.0) * 65535.0).astype(np.uint16)
        else:
            img = np.clip(img, 0, 65535).astype(np.uint16)
    return img


def read_mask(path: str | Path) -> np.ndarray:
    """Read a label map exactly (no colour conversion): 0 background, 1..K bodies."""
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if mask is None or mask.ndim != 2:
        raise InputError(f"{path}: not a readable single-channel label mask")
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None):
    """Yield a temporary file path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give results the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary directory beside ``path``; it becomes ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a PNG atomically; uint8 or uint16, byte-identical for identical arrays."""
    array = np.ascontiguousarray(array)
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise InputError(f"{path}: could not encode PNG")
    with atomic_path(path) as tmp:
        buf.tofile(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_csv(path: str | Path, frame) -> None:
    """Write a pandas DataFrame as CSV atomically, without the index; floats kept reproducible."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def read_csv_checked(path: str | Path, columns=(), **kwargs):
    """Read a CSV with pandas; a missing or unreadable file or a missing column is one clear InputError."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing")
    try:
        frame = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CSV ({type(err).__name__}: {err})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def read_json(path: str | Path, hint: str = ""):
    """Read a JSON file; a missing or invalid file is one clear InputError (``hint`` says what it should be)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file{f' ({hint})' if hint else ''}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
