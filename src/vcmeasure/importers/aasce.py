"""AASCE 2019 / SpineWeb dataset 16 (BoostNet labels) into the canonical dataset (issue 10; DESIGN §3).

Source layout, taken as downloaded: ``boostnet_labeldata/data/<part>/<name>.jpg`` with the landmarks in
``boostnet_labeldata/labels/<part>/<name>.jpg.mat`` (``p2``: 68 x 2 pixel coordinates x, y; 17 bodies T1-L5 top
to bottom x 4 corners in the order top-left, top-right, bottom-left, bottom-right). ``SRC`` may be the
``boostnet_labeldata`` folder or the folder holding it.

These are **anterior-posterior (AP)** radiographs: a body has a left and a right side, no anterior or posterior
one. So, honestly:

- ``anterior_side`` is ``unknown`` and the images are never flipped;
- the corner columns are filled by position, not by anatomy: the image-LEFT side goes to the ``as``/``ai``
  columns (top-left, bottom-left) and the image-RIGHT side to ``ps``/``pi`` (top-right, bottom-right);
  ``ha_px``/``hp_px`` are therefore the left/right body heights;
- the measure is ``ap_left_height_ratio``: Eq. 1 (DESIGN §4) applied to the left-side heights
  (1 - 2 h / (h_above + h_below)) x 100. It is not a vertebral compression and is never called VC; no
  Genant grade is given and ``fractured`` stays empty (the labels say nothing about fractures).

Masks are the corner quadrilaterals TL -> TR -> BR -> BL rasterised with ``cv2.fillPoly``, labels 1..17 top
to bottom, levels T1..L5.

Subjects come from the file names. The rule (:func:`subject_from_name`): drop the extension, then a trailing
view token (``AP``, ``PA``, ``LAT``, any suffix such as ``AP2``), then a trailing single-letter image code
(``A``, ``b``, ...); what is left, with case folded and blanks collapsed, is the subject. Because only
trailing tokens are dropped and case is folded, the images of one subject (``X A AP``, ``X b ap``, ``X AP2``,
``X``) always get the same subject. Names with no letter code, or no view token either, are reported (counted
in the log, named in the private mapping) and still imported: without a letter code the rest of the name is
the subject.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from .common import (
    MOVED_NOTE,
    BodyRecord,
    Entry,
    ImageRecord,
    SkipFile,
    check_points,
    load_image,
    rasterise,
    resolve_overlaps,
)

SOURCE = "aasce"
MEASURE = "ap_left_height_ratio"
N_BODIES = 17
LEVELS = [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm")
_VIEW = re.compile(r"^(?P<rest>.*?)[\s_-]+(?:AP|PA|LAT)[A-Za-z0-9]*$", re.IGNORECASE)
_CODE = re.compile(r"^(?P<rest>.*?\S)[\s_-]+(?P<code>[A-Za-z])$")


def subject_from_name(stem: str) -> tuple[str, str]:
    """(source subject, note) from a file name without extension; the note is empty when the name fits."""
    text = " ".join(stem.split())
    notes = []
    view = _VIEW.match(text)
    if view:
        text = view.group("rest")
    code = _CODE.match(text)
    if code:
        text = code.group("rest")
    elif view:
        notes.append("no letter code: subject is the name without its view token")
    else:
        notes.append("name fits no rule (no letter code, no view token): subject is the whole name")
    return text.strip(" _-").casefold(), "; ".join(notes)


def _root(src: Path) -> Path:
    if (src / "boostnet_labeldata").is_dir():
        src = src / "boostnet_labeldata"
    if not (src / "data").is_dir() or not (src / "labels").is_dir():
        raise InputError(f"{src}: not an AASCE/BoostNet folder (expected data/ and labels/ inside)")
    return src


def _read_points(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    if not path.is_file():
        raise SkipFile("no landmark file (labels/<part>/<image name>.mat)")
    try:
        mat = loadmat(path)
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError... on corrupt files
        raise SkipFile(f"landmark file not readable ({type(err).__name__})") from None
    if "p2" not in mat:
        raise SkipFile("landmark file has no 'p2' array")
    points = np.asarray(mat["p2"], dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] != 4 * N_BODIES:
        raise SkipFile(f"wrong point count: p2 has shape {points.shape}, expected ({4 * N_BODIES}, 2)")
    return points


def bodies_from_points(points: np.ndarray) -> list[BodyRecord]:
    """17 bodies from the 68 corners (TL, TR, BL, BR each); left side -> as/ai, right side -> ps/pi."""
    bodies = []
    for k in range(N_BODIES):
        tl, tr, bl, br = (tuple(map(float, p)) for p in points[4 * k:4 * k + 4])
        bodies.append(BodyRecord(label=k + 1, level=LEVELS[k], as_=tl, ai=bl, ps=tr, pi=br))
    centres_y = [np.mean([b.as_[1], b.ai[1], b.ps[1], b.pi[1]]) for b in bodies]
    if np.any(np.diff(centres_y) <= 0):
        raise SkipFile("bodies are not in top-to-bottom order")
    return bodies


def _loader(image_path: Path, label_path: Path, counters: dict):
    def load() -> ImageRecord:
        points = _read_points(label_path)
        image = load_image(image_path)
        points = check_points(points, image.pixels.shape, "landmarks")
        bodies = bodies_from_points(points)
        counters["moved"] += resolve_overlaps(bodies)
        mask = rasterise(image.pixels.shape, bodies)
        return ImageRecord(pixels=image.pixels, mask=mask, bodies=bodies, anterior_side="unknown",
                           pixel_spacing_mm=image.pixel_spacing_mm)

    return load


def collect(src: str | Path) -> tuple[list[Entry], Callable[[], list[str]]]:
    """Entries for every image under data/<part>/, and notes on names that do not fit the subject rule."""
    root = _root(Path(src))
    entries, counters = [], {"moved": 0}
    for image_path in sorted(p for p in (root / "data").rglob("*") if p.is_file()):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        rel = image_path.relative_to(root / "data")
        label_path = root / "labels" / rel.parent / f"{image_path.name}.mat"
        subject, note = subject_from_name(image_path.stem)
        entries.append(Entry(name=rel.as_posix(), source_subject=subject, note=note, files=[image_path, label_path],
                             load=_loader(image_path, label_path, counters)))
    if not entries:
        raise InputError(f"{root / 'data'}: no images found")
    odd = sum(bool(e.note) for e in entries)

    def notes() -> list[str]:  # read after the loaders ran
        items = []
        if odd:
            items.append(f"{odd} file name(s) did not fit the '<subject> <letter> <view>' pattern and were imported "
                         "with the fallback subject rule (see the 'note' column of the private mapping)")
        if counters["moved"]:
            items.append(MOVED_NOTE.format(counters["moved"]))
        return items

    return entries, notes
