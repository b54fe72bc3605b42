"""Division of a segmentation map into three-vertebra windows (paper "Division into three vertebral bodies", Fig. 3).

Eq. 1 needs the anterior heights of a body and of its neighbours above and below, so every window of three
consecutive bodies (numbered top to bottom) is a candidate. A window is accepted only when it meets the
paper's three conditions (DESIGN §4, "triplet acceptance"):

1. each body is exactly one connected component: not split into pieces, not merged with a neighbour;
2. four corners can be found for each body (:func:`vcmeasure.geometry.find_corners`);
3. the three bodies are adjacent, with no body missing between them.

The label map is first relabelled by 4-connected components per label (as :mod:`vcmeasure.postprocess`
labels), so a body split in two shows as two components and two merged bodies as one. Splits and merges
are recognised from the shapes alone (a piece far smaller or closer than a body, a component twice a body's
height), as image processing can; when the ground-truth map is given, the overlap with it adds the checks
the shapes may miss. Gaps (condition 3) are found from the centre spacing against the bodies' size, and
from non-consecutive ground-truth matches.

Each accepted window becomes a three-body binary crop centred on the middle body, scaled isotropically (so
the height ratios of Eq. 1 survive) and zero padded to ``window_size`` (DESIGN: ``windows.npz``). The middle
body is matched to a ground-truth body by IoU; the reference is that body's ``value_reader``
(measurements.csv), with ``value_true`` and the fractured flag (dataset flag, else VC >= threshold).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .errors import InputError
from .geometry import Body, measure_bodies
from .io import atomic_path, read_mask, write_csv, write_text
from .measures import FRACTURE_THRESHOLD, is_fractured

log = logging.getLogger(__name__)

SPLIT_MERGED, NO_CORNERS, NOT_ADJACENT = 1, 2, 3
CONDITION_NAMES = {
    SPLIT_MERGED: "body split or merged",
    NO_CORNERS: "four corners not found",
    NOT_ADJACENT: "bodies not adjacent",
}
SPECK_SHARE = 0.05  # components below this share of the median body area are noise, not bodies
FRAGMENT_AREA = 0.6  # a component under this share of the median area is a piece of a split body
CLOSE_SPACING = 0.6  # centres closer than this x median extent: two pieces of one body
MERGED_EXTENT = 1.7  # a component this many times the median extent along the spine holds two bodies
MERGED_AREA = 1.9
GAP_SPACING = 1.8  # centre spacing over this x the larger body's extent: a body is missing between
MIN_IOU = 0.3  # a predicted body matches a ground-truth body at this IoU or above
CONFIRM_IOU = 0.6  # ... and is that body (whatever its size or spacing) at this IoU, covering no other
GT_SHARE = 0.3  # a component covering this share of two ground-truth bodies merges them

INDEX_COLUMNS = ["triplet_id", "image_id", "subject_id", "split", "middle_label", "gt_label", "level", "reference",
                 "value_true", "fractured", "ha_above", "ha_middle", "ha_below"]
REJECTION_COLUMNS = ["image_id", "window", "labels", "condition", "reason"]
PAPER = {"images_total": 387, "images_failed": 83, "windows_generated": 1366, "windows_accepted": 1134,
         "windows_by_split": {"train": 945, "test": 189}, "fractured_test": 83}


@dataclass
class Components:
    """A label map relabelled into connected components 1..n, top to bottom, with their geometry and flags."""

    comp_map: np.ndarray  # int32, 0 background
    bodies: list[Body]  # bodies[i] is component i + 1
    source_labels: list[int]  # the input label each component came from
    gt_labels: list[int | None] = field(default_factory=list)
    split_merged: dict[int, str] = field(default_factory=dict)  # component index (1-based) -> reason
    gaps: dict[int, str] = field(default_factory=dict)  # i -> reason: a body is missing between i and i + 1

    def __len__(self) -> int:
        return len(self.bodies)


def component_map(label_map: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Relabel each label's connected components 1..n top to bottom (specks dropped); also each one's label."""
    label_map = np.asarray(label_map)
    pieces = []  # (area, centre y, centre x, source label, pixel mask)
    for label in (int(v) for v in np.unique(label_map) if v != 0):
        n, cc, stats, cents = cv2.connectedComponentsWithStats((label_map == label).astype(np.uint8), connectivity=4)
        for k in range(1, n):
            pieces.append((stats[k, cv2.CC_STAT_AREA], cents[k][1], cents[k][0], label, cc == k))
    if not pieces:
        return np.zeros(label_map.shape, np.int32), []
    speck = SPECK_SHARE * float(np.median([p[0] for p in pieces]))
    pieces = sorted((p for p in pieces if p[0] >= max(speck, 1)), key=lambda p: (p[1], p[2]))
    out = np.zeros(label_map.shape, np.int32)
    for i, piece in enumerate(pieces, start=1):
        out[piece[4]] = i
    return out, [int(p[3]) for p in pieces]


def _match_gt(comp_map: np.ndarray, n: int, gt_map: np.ndarray):
    """Best-IoU ground-truth label per component (None below MIN_IOU), the GT bodies each covers, the IoU."""
    gt_labels, covered, ious = [], [], []
    gt_ids = [int(v) for v in np.unique(gt_map) if v != 0]
    gt_area = {g: int((gt_map == g).sum()) for g in gt_ids}
    for i in range(1, n + 1):
        comp = comp_map == i
        inside = gt_map[comp]
        best, best_iou, cover = None, 0.0, []
        for g in (int(v) for v in np.unique(inside) if v != 0):
            inter = int((inside == g).sum())
            iou = inter / (comp.sum() + gt_area[g] - inter)
            if iou > best_iou:
                best, best_iou = g, iou
            if inter >= GT_SHARE * gt_area[g]:
                cover.append(g)
        gt_labels.append(best if best_iou >= MIN_IOU else None)
        covered.append(cover)
        ious.append(best_iou)
    return gt_labels, covered, ious


def analyse(label_map: np.ndarray, gt_map: np.ndarray | None = None) -> Components:
    """Components of a label map with the per-body (condition 1) and per-gap (condition 3) findings."""
    comp, source = component_map(label_map)
    n = len(source)
    bodies = measure_bodies(comp, labels=range(1, n + 1))
    bodies.sort(key=lambda b: b.label)
    result = Components(comp_map=comp, bodies=bodies, source_labels=source)
    if n == 0:
        return result
    flags, shape_flags, shape_gaps = result.split_merged, {}, {}  # shape findings: checked against the GT below
    med_area = float(np.median([b.area for b in bodies]))
    med_extent = float(np.median([b.extent for b in bodies]))
    counts = pd.Series(source).value_counts()
    for i, b in enumerate(bodies, start=1):
        if counts[source[i - 1]] > 1:
            flags[i] = f"label {source[i - 1]} is split into {counts[source[i - 1]]} pieces"
        elif b.area < FRAGMENT_AREA * med_area:
            shape_flags[i] = f"fragment: area {b.area} px is {b.area / med_area:.2f} of the median body"
        elif b.extent > MERGED_EXTENT * med_extent or b.area > MERGED_AREA * med_area:
            shape_flags[i] = f"merged: {b.extent:.0f} px along the spine, {b.extent / med_extent:.2f} x the median body"
    for i in range(1, n):
        a, b = bodies[i - 1], bodies[i]
        d = float(np.linalg.norm(b.centre - a.centre))
        if d < CLOSE_SPACING * med_extent:
            for j in (i, i + 1):
                shape_flags.setdefault(j, f"split: components {i} and {i + 1} are {d:.0f} px apart, one body's height")
        elif d > GAP_SPACING * max(a.extent, b.extent):
            shape_gaps[i] = f"centres {d:.0f} px apart, {d / max(a.extent, b.extent):.2f} x a body: body missing"
    result.gt_labels = [None] * n
    confirmed = set()  # components that are exactly one ground-truth body: shape heuristics do not apply
    if gt_map is not None:
        result.gt_labels, covered, ious = _match_gt(comp, n, np.asarray(gt_map))
        best = pd.Series([g for g in result.gt_labels if g is not None]).value_counts()
        for i, g in enumerate(result.gt_labels, start=1):
            if len(covered[i - 1]) > 1:
                flags.setdefault(i, f"merged: covers ground-truth bodies {', '.join(map(str, covered[i - 1]))}")
            elif g is None:
                flags.setdefault(i, f"matches no ground-truth body (IoU < {MIN_IOU:.1f})")
            elif best[g] > 1:
                flags.setdefault(i, f"split: ground-truth body {g} is matched by {best[g]} components")
            elif ious[i - 1] >= CONFIRM_IOU:
                confirmed.add(i)
        for i in range(1, n):
            g0, g1 = result.gt_labels[i - 1], result.gt_labels[i]
            if g0 is not None and g1 is not None and g1 - g0 > 1:
                result.gaps[i] = f"ground-truth bodies {g0} and {g1} are not adjacent"
            elif i in confirmed and i + 1 in confirmed and g1 - g0 == 1:
                shape_gaps.pop(i, None)
    for i, reason in shape_flags.items():
        if i not in confirmed:
            flags.setdefault(i, reason)
    for i, reason in shape_gaps.items():
        result.gaps.setdefault(i, reason)
    return result


def check_window(comps: Components, middle: int) -> tuple[int, str] | None:
    """First failed condition (1, 2, 3) and its reason for the window around component ``middle``, else None."""
    trio = (middle - 1, middle, middle + 1)
    split = [f"body {i}: {comps.split_merged[i]}" for i in trio if i in comps.split_merged]
    if split:
        return SPLIT_MERGED, "; ".join(split)
    corners = [f"body {i}: no four corners" for i in trio if not comps.bodies[i - 1].has_corners]
    if corners:
        return NO_CORNERS, "; ".join(corners)
    gaps = [f"between {i} and {i + 1}: {comps.gaps[i]}" for i in (middle - 1, middle) if i in comps.gaps]
    if gaps:
        return NOT_ADJACENT, "; ".join(gaps)
    return None


def window_crop(comp_map: np.ndarray, labels, centre, size: int, margin: float = 0.05) -> np.ndarray:
    """Binary crop of the given components, square around ``centre`` (x, y), resized to size x size in [0, 1].

    The crop is square and then resized, so both axes scale alike (height ratios kept); zero padding fills
    what lies outside the image.
    """
    mask = np.isin(comp_map, list(labels)).astype(np.float32)
    ys, xs = np.nonzero(mask)
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    half = max(np.abs(xs - cx).max(), np.abs(ys - cy).max()) + 1
    half = int(np.ceil(half * (1.0 + margin))) + 1
    padded = np.pad(mask, half)
    crop = padded[cy : cy + 2 * half + 1, cx : cx + 2 * half + 1]  # centre at (half, half) after padding
    out = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _lookup_tables(vertebrae: pd.DataFrame, measurements: pd.DataFrame):
    vert = {(str(r.image_id), int(r.label)): r for r in vertebrae.itertuples(index=False)}
    meas = {(str(r.image_id), int(r.label)): r for r in measurements.itertuples(index=False)}
    return vert, meas


def _num(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def image_windows(image_id: str, label_map: np.ndarray, gt_map: np.ndarray | None, window_size: int):
    """Accepted windows (rows, crops) and rejections of one image."""
    comps = analyse(label_map, gt_map)
    n = len(comps)
    rows, crops, rejections = [], [], []
    if n < 3:
        rejections.append({"image_id": image_id, "window": "", "labels": "", "condition": NOT_ADJACENT,
                           "reason": f"only {n} bodies found: no three adjacent bodies"})
        return comps, rows, crops, rejections, 0
    for middle in range(2, n):
        trio = (middle - 1, middle, middle + 1)
        tid = f"{image_id}_m{middle:02d}"
        failed = check_window(comps, middle)
        if failed is not None:
            rejections.append({"image_id": image_id, "window": tid, "labels": "-".join(map(str, trio)),
                               "condition": failed[0], "reason": failed[1]})
            continue
        b = comps.bodies
        crops.append(window_crop(comps.comp_map, trio, b[middle - 1].centre, window_size))
        rows.append({"triplet_id": tid, "image_id": image_id, "middle_label": middle,
                     "gt_label": comps.gt_labels[middle - 1],
                     "ha_above": b[middle - 2].ha, "ha_middle": b[middle - 1].ha, "ha_below": b[middle].ha})
    return comps, rows, crops, rejections, n - 2


def _read_split(path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"image_id": str, "subject_id": str})
    missing = {"image_id", "subject_id", "split"} - set(frame.columns)
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return frame.set_index("image_id")


def _read_csv(path, columns) -> pd.DataFrame:
    if not Path(path).is_file():
        raise InputError(f"{path}: missing")
    frame = pd.read_csv(path, dtype={"image_id": str, "level": str})
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def extract_triplets(masks_dir, gt_masks_dir, vertebrae_csv, measurements_csv, split_csv, out_windows, out_index,
                     out_rejections, out_summary_md, out_summary_json, window_size: int = 128,
                     fracture_threshold: float = FRACTURE_THRESHOLD, source: str = "") -> dict:
    """Rule ``extract_triplets``: windows, index, rejections and summary for one mask source."""
    masks_dir, gt_masks_dir = Path(masks_dir), Path(gt_masks_dir)
    if not masks_dir.is_dir():
        raise InputError(f"{masks_dir}: mask folder not found")
    split = _read_split(split_csv)
    vertebrae = _read_csv(vertebrae_csv, ["image_id", "label", "level", "fractured"])
    measurements = _read_csv(measurements_csv, ["image_id", "label", "value_true", "value_reader"])
    vert, meas = _lookup_tables(vertebrae, measurements)
    rows, crops, rejections = [], [], []
    images_total = generated = 0
    accepted_images = set()
    no_mask = [i for i in split.index if not (masks_dir / f"{i}.png").is_file()]
    for image_id in sorted(i for i in split.index if (masks_dir / f"{i}.png").is_file()):
        label_map = read_mask(masks_dir / f"{image_id}.png")
        gt_path = gt_masks_dir / f"{image_id}.png"
        gt_map = read_mask(gt_path) if gt_path.is_file() else None
        if gt_map is not None and gt_map.shape != label_map.shape:
            raise InputError(f"{gt_path}: shape {gt_map.shape} differs from {masks_dir / image_id}.png")
        _, r, c, rej, n_windows = image_windows(image_id, label_map, gt_map, window_size)
        images_total += 1
        generated += n_windows
        rows += r
        crops += c
        rejections += rej
        if r:
            accepted_images.add(image_id)
    for row in rows:
        key = (row["image_id"], row["gt_label"]) if row["gt_label"] is not None else None
        row["subject_id"] = split.at[row["image_id"], "subject_id"]
        row["split"] = split.at[row["image_id"], "split"]
        v, m = vert.get(key) if key else None, meas.get(key) if key else None
        row["level"] = v.level if v is not None and isinstance(v.level, str) else ""
        row["reference"] = _num(m.value_reader) if m is not None else float("nan")
        row["value_true"] = _num(m.value_true) if m is not None else float("nan")
        flag = _num(v.fractured) if v is not None else float("nan")
        if np.isfinite(flag):
            row["fractured"] = int(flag)
        elif np.isfinite(row["value_true"]):
            row["fractured"] = int(is_fractured(row["value_true"], fracture_threshold))
        else:
            row["fractured"] = pd.NA
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    index["gt_label"] = index["gt_label"].astype("Int64")
    index["fractured"] = index["fractured"].astype("Int64")
    x = np.stack(crops)[..., None] if crops else np.zeros((0, window_size, window_size, 1), np.float32)
    with atomic_path(out_windows, suffix=".npz") as tmp:
        np.savez_compressed(tmp, x=x.astype(np.float32), triplet_id=index["triplet_id"].to_numpy(dtype=str))
    write_csv(out_index, index)
    write_csv(out_rejections, pd.DataFrame(rejections, columns=REJECTION_COLUMNS))
    summary = summarise(index, pd.DataFrame(rejections, columns=REJECTION_COLUMNS), images_total,
                        len(accepted_images), generated)
    summary["images_without_mask"] = len(no_mask)
    summary["source"] = source
    with atomic_path(out_summary_json) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_text(out_summary_md, summary_markdown(summary))
    log.info("%s: %d images, %d windows accepted of %d", source, images_total, len(index), generated)
    return summary


def summarise(index: pd.DataFrame, rejections: pd.DataFrame, images_total: int, images_ok: int,
              generated: int) -> dict:
    """The step in the paper's terms (images failed, windows generated / accepted / used per split)."""
    used = index[index["reference"].notna()]
    by_split = {s: int((used["split"] == s).sum()) for s in ("train", "val", "test")}
    fractured = used["fractured"].fillna(0).astype(int) == 1
    by_condition = {str(c): int((rejections["condition"] == c).sum()) for c in CONDITION_NAMES}
    return {
        "images_total": int(images_total),
        "images_failed": int(images_total - images_ok),
        "windows_generated": int(generated),
        "windows_accepted": int(len(index)),
        "windows_with_reference": int(len(used)),
        "windows_by_split": by_split,
        "fractured_test": int((fractured & (used["split"] == "test")).sum()),
        "rejected_by_condition": by_condition,
    }


def summary_markdown(summary: dict) -> str:
    """Markdown table of the summary beside the paper's numbers."""
    by = summary["windows_by_split"]
    p = PAPER
    lines = [
        f"# Three-vertebra windows ({summary.get('source') or 'masks'})",
        "",
        "| | this run | paper |",
        "| --- | --- | --- |",
        f"| images | {summary['images_total']} | {p['images_total']} |",
        f"| images failed (no accepted window) | {summary['images_failed']} | {p['images_failed']} |",
        f"| windows of three consecutive bodies | {summary['windows_generated']} | {p['windows_generated']} |",
        f"| windows accepted (three conditions) | {summary['windows_accepted']} | {p['windows_accepted']} (used) |",
        f"| ... with a reference value | {summary['windows_with_reference']} | |",
        f"| train / val / test | {by['train']} / {by['val']} / {by['test']} | "
        f"{p['windows_by_split']['train']} / - / {p['windows_by_split']['test']} |",
        f"| fractured test vertebrae | {summary['fractured_test']} | {p['fractured_test']} |",
        "",
        "Rejected windows by failed condition (first failing condition per window; image-level rejections "
        "count under 3):",
        "",
    ]
    for c, name in CONDITION_NAMES.items():
        lines.append(f"- ({c}) {name}: {summary['rejected_by_condition'][str(c)]}")
    if summary.get("images_without_mask"):
        lines.append(f"\nImages of the split without a mask in this source: {summary['images_without_mask']}.")
    return "\n".join(lines) + "\n"


def figure3(masks_dir, index_csv, windows_npz, rejections_csv, out_png, n_windows: int = 6) -> None:
    """Fig. 3: a label map numbered top to bottom and its division into three-body windows.

    The image with the most accepted windows is shown (first image id on a tie); rejected windows are listed
    with their failed condition.
    """
    import matplotlib.pyplot as plt

    from .plotting import save_figure

    index = pd.read_csv(index_csv, dtype={"image_id": str, "triplet_id": str})
    rejections = pd.read_csv(rejections_csv, dtype={"image_id": str})
    data = np.load(windows_npz)
    fig = plt.figure(figsize=(12, 5.5))
    if index.empty:
        fig.text(0.5, 0.5, "no accepted three-body window", ha="center", va="center")
        save_figure(fig, out_png)
        return
    counts = index.groupby("image_id").size()
    image_id = sorted(counts[counts == counts.max()].index)[0]
    comp, _ = component_map(read_mask(Path(masks_dir) / f"{image_id}.png"))
    rows = index[index["image_id"] == image_id].reset_index()
    rows = rows.iloc[np.unique(np.linspace(0, len(rows) - 1, min(n_windows, len(rows))).round().astype(int))]
    ax = fig.add_axes([0.02, 0.08, 0.36, 0.84])
    shown = np.ma.masked_equal(comp, 0)
    ax.imshow(shown, cmap="tab20", interpolation="nearest")
    ys, xs = np.nonzero(comp)
    pad = 10
    ax.set_xlim(xs.min() - pad, xs.max() + pad)
    ax.set_ylim(ys.max() + pad, ys.min() - pad)
    for k in range(1, int(comp.max()) + 1):
        cy, cx = np.argwhere(comp == k).mean(axis=0)
        ax.text(cx, cy, str(k), ha="center", va="center", fontsize=9, color="black", weight="bold")
    ax.set_title(f"(a) label map {image_id}: bodies 1..{int(comp.max())} top to bottom", fontsize=9)
    ax.axis("off")
    lookup = dict(zip(data["triplet_id"], data["x"], strict=True))
    ncol = 3
    for j, row in enumerate(rows.itertuples(index=False)):
        sub = fig.add_axes([0.42 + (j % ncol) * 0.19, 0.52 - (j // ncol) * 0.44, 0.17, 0.38])
        sub.imshow(lookup[row.triplet_id][..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ref = "" if pd.isna(row.reference) else f", ref VC {row.reference:.1f}"
        m = int(row.middle_label)
        sub.set_title(f"bodies {m - 1}-{m}-{m + 1}{ref}", fontsize=8)
        sub.axis("off")
    rej = rejections[rejections["image_id"] == image_id]
    note = "; ".join(f"{r.labels or 'image'}: condition {r.condition}" for r in rej.itertuples(index=False))
    fig.text(0.42, 0.03, "(b) accepted windows" + (f" - rejected: {note}" if note else ""), fontsize=8)
    save_figure(fig, out_png)
