"""Importers (issue 10): AASCE, BUU-LSPINE and folder fixtures into the canonical dataset (DESIGN §3),
patient data kept out, bad input reported per file, and the shared AASCE sample when present."""

import math
import os
import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from vcmeasure.cli import main
from vcmeasure.dataset import (
    IMAGE_ID_RE,
    IMAGES_COLUMNS,
    MEASUREMENTS_COLUMNS,
    VERTEBRAE_COLUMNS,
    load_dataset,
)
from vcmeasure.errors import ConfigError
from vcmeasure.importers import import_dataset, run_import
from vcmeasure.importers.aasce import subject_from_name
from vcmeasure.importers.ids import subject_id
from vcmeasure.io import read_image, read_mask
from vcmeasure.measures import vertebral_compression

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "aasce-sample"
SALT = "test-salt"


def check_contract(dest: Path, measure: str) -> None:
    """The canonical dataset contract, checked directly (and by vcmeasure.validate once it exists)."""
    ds = load_dataset(dest)
    assert list(ds.images.columns) == IMAGES_COLUMNS
    assert list(ds.vertebrae.columns) == VERTEBRAE_COLUMNS
    assert list(ds.measurements.columns) == MEASUREMENTS_COLUMNS
    assert ds.images["image_id"].is_unique
    for row in ds.images.itertuples():
        assert IMAGE_ID_RE.match(row.image_id)
        img, mask = read_image(ds.image_path(row.image_id)), read_mask(ds.mask_path(row.image_id))
        assert img.shape == mask.shape == (row.height, row.width)
        labels = set(ds.vertebrae.loc[ds.vertebrae.image_id == row.image_id, "label"])
        assert set(np.unique(mask)) - {0} == labels
    assert set(ds.measurements["measure"]) == {measure}
    assert set(ds.images["anterior_side"]) <= {"left", "right", "unknown"}
    try:
        from vcmeasure.validate import validate_dataset
    except ImportError:
        return
    assert validate_dataset(dest) == []


def all_output_bytes(*roots: Path) -> bytes:
    return b"".join(p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file())


# ---------------------------------------------------------------- AASCE

def aasce_points(x0=40.0, y0=20.0, w=30.0, h=12.0, gap=4.0, left_scale=None) -> np.ndarray:
    """68 corners (TL, TR, BL, BR per body), bodies stacked top to bottom; left heights may be scaled."""
    pts, y = [], y0
    for k in range(17):
        hl = h * (left_scale[k] if left_scale else 1.0)
        pts += [(x0, y), (x0 + w, y), (x0, y + hl), (x0 + w, y + h)]
        y += h + gap
    return np.array(pts, float)


def write_aasce(root: Path, name: str, points: np.ndarray | None, *, size=(300, 120), image_bytes=None) -> None:
    for part in ("data/training", "labels/training"):
        (root / "boostnet_labeldata" / part).mkdir(parents=True, exist_ok=True)
    image_path = root / "boostnet_labeldata/data/training" / f"{name}.jpg"
    if image_bytes is not None:
        image_path.write_bytes(image_bytes)
    else:
        rng = np.random.default_rng(len(name))
        cv2.imwrite(str(image_path), rng.integers(0, 255, size, dtype=np.uint8))
    if points is not None:
        savemat(root / "boostnet_labeldata/labels/training" / f"{name}.jpg.mat", {"p2": points})


@pytest.fixture()
def aasce_src(tmp_path):
    src = tmp_path / "aasce"
    scale = [1.0] * 17
    scale[5] = 0.5  # body 6: left side half as tall
    write_aasce(src, "sunhl-1th-01-Jan-2017-7 A AP", aasce_points(left_scale=scale))
    write_aasce(src, "sunhl-1th-01-Jan-2017-7 b ap2", aasce_points(x0=50))  # same subject, other case/suffix
    write_aasce(src, "sunhl-1th-01-Jan-2017-7 AP", aasce_points(x0=45))  # no letter code: same subject
    write_aasce(src, "sunhl-1th-03-Feb-2017-9 C AP", aasce_points(x0=60))
    write_aasce(src, "oddname", aasce_points(x0=30))  # fits no rule: its own subject
    write_aasce(src, "bad count A AP", aasce_points()[:60])
    write_aasce(src, "outside A AP", aasce_points(x0=100))  # right side at x=130 > width 120
    write_aasce(src, "no label A AP", None)
    write_aasce(src, "corrupt A AP", aasce_points(), image_bytes=b"not a jpeg")
    return src


def test_subject_rule_merges_variants_and_reports_odd_names():
    assert subject_from_name("sunhl-1th-02-Jan-2017-162 A AP") == ("sunhl-1th-02-jan-2017-162", "")
    assert subject_from_name("sunhl-1th-02-Jan-2017-162  b  ap2")[0] == "sunhl-1th-02-jan-2017-162"
    subj, note = subject_from_name("sunhl-1th-02-Jan-2017-162 AP")
    assert subj == "sunhl-1th-02-jan-2017-162" and "no letter code" in note
    subj, note = subject_from_name("Sunhl-1th-02-Jan-2017-162")
    assert subj == "sunhl-1th-02-jan-2017-162" and "fits no rule" in note


def test_aasce_import(aasce_src, tmp_path, capsys):
    dest, mapping = tmp_path / "raw" / "aasce_t", tmp_path / "private" / "map.csv"
    rc = main(["import", "aasce", str(aasce_src), str(dest), "--salt", SALT, "--mapping", str(mapping)])
    assert rc == 1  # four bad files were skipped
    check_contract(dest, "ap_left_height_ratio")
    ds = load_dataset(dest)
    assert len(ds.images) == 5 and set(ds.images["anterior_side"]) == {"unknown"}
    skipped = pd.read_csv(dest / "import_skipped.csv")
    reasons = " | ".join(skipped["reason"])
    assert len(skipped) == 4
    for expected in ("wrong point count", "outside the 120x300 image", "no landmark file", "not a readable image"):
        assert expected in reasons
    # one subject's three images share one id; the odd name is its own subject
    table = pd.read_csv(mapping).set_index("source_file")
    ids = table.loc[[f"training/sunhl-1th-01-Jan-2017-7 {s}.jpg" for s in ("A AP", "b ap2", "AP")], "subject_id"]
    assert ids.nunique() == 1 and ids.iloc[0] == subject_id(SALT, "sunhl-1th-01-jan-2017-7")
    assert ds.images["subject_id"].nunique() == 3
    assert "note:" in capsys.readouterr().err
    # left side -> as/ai; body 6's left height halved -> ratio (1 - 2*6/(12+12))*100 = 50
    first = table.loc["training/sunhl-1th-01-Jan-2017-7 A AP.jpg", "image_id"]
    vert = ds.vertebrae[ds.vertebrae.image_id == first].set_index("label")
    assert (vert["as_x"] < vert["ps_x"]).all() and vert.loc[6, "ha_px"] == pytest.approx(6.0)
    assert vert.loc[6, "hp_px"] == pytest.approx(12.0) and vert["fractured"].isna().all()
    meas = ds.measurements[ds.measurements.image_id == first].set_index("label")
    assert sorted(meas.index) == list(range(2, 17))
    assert meas.loc[6, "value_true"] == pytest.approx(50.0)
    assert meas.loc[5, "value_true"] == pytest.approx(vertebral_compression(12, 12, 6))
    assert meas["genant_grade"].isna().all()  # no Genant grade for a side-height ratio
    assert list(vert["level"]) == [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
    mask = read_mask(ds.mask_path(first))
    assert mask[20 + 6, 40 + 15] == 1 and mask[0, 0] == 0  # inside body 1's quadrilateral
    # no source name (nor a piece of one) anywhere in the dataset
    blob = all_output_bytes(dest)
    for needle in (b"sunhl", b"Jan-2017", b"oddname", b"corrupt A", b" AP"):
        assert needle not in blob


def test_mapping_inside_dataset_refused(aasce_src, tmp_path):
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ConfigError, match="outside the dataset folder"):
        import_dataset("aasce", aasce_src, dest, salt=SALT, mapping=dest / "map.csv")


def test_salt_required(aasce_src, tmp_path, monkeypatch):
    monkeypatch.delenv("VCMEASURE_SALT", raising=False)
    with pytest.raises(ConfigError, match="VCMEASURE_SALT"):
        import_dataset("aasce", aasce_src, tmp_path / "d", mapping=tmp_path / "m.csv")
    monkeypatch.setenv("VCMEASURE_SALT", "from-env")
    report = import_dataset("aasce", aasce_src, tmp_path / "d", mapping=tmp_path / "m.csv")
    assert report.imported == 5
    assert set(pd.read_csv(tmp_path / "m.csv")["subject_id"]) >= {subject_id("from-env", "oddname")}


def test_run_import_fails_after_writing_when_skipped(aasce_src, tmp_path):
    dest = tmp_path / "d"
    with pytest.raises(Exception, match="4 file.s. skipped"):
        run_import("aasce", aasce_src, dest, salt=SALT, mapping=tmp_path / "m.csv")
    assert (dest / "import_skipped.csv").is_file()
    run_import("aasce", aasce_src, dest, salt=SALT, mapping=tmp_path / "m.csv", allow_skipped=True)


def test_keep_names_sanitises(aasce_src, tmp_path):
    dest = tmp_path / "d"
    import_dataset("aasce", aasce_src, dest, salt=SALT, mapping=tmp_path / "m.csv", keep_names=True)
    ids = set(load_dataset(dest).images["image_id"])
    assert "training_sunhl-1th-01-Jan-2017-7_A_AP_jpg" in ids and all(IMAGE_ID_RE.match(i) for i in ids)


def test_crossing_corners_meet_and_validate(tmp_path):
    points = aasce_points()
    points[4 * 4 + 2] = (40.0, 20 + 4 * 16 + 12 + 8)  # body 5's bottom-left 4 px below body 6's top-left
    src = tmp_path / "src"
    write_aasce(src, "cross A AP", points)
    dest = tmp_path / "d"
    report = import_dataset("aasce", src, dest, salt=SALT, mapping=tmp_path / "m.csv")
    assert report.ok and any("crossing corners" in n for n in report.notes)
    check_contract(dest, "ap_left_height_ratio")
    vert = load_dataset(dest).vertebrae.set_index("label")
    assert (vert.loc[5, "ai_x"], vert.loc[5, "ai_y"]) == (vert.loc[6, "as_x"], vert.loc[6, "as_y"]) == (40, 102)


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared AASCE sample not present")
def test_aasce_shared_sample(tmp_path):
    dest = tmp_path / "raw" / "aasce_sample"
    report = import_dataset("aasce", SAMPLE, dest, salt=SALT, mapping=tmp_path / "m.csv")
    n_files = len(list((SAMPLE / "boostnet_labeldata" / "data").rglob("*.jpg")))
    assert report.imported + len(report.skipped) == n_files and report.imported >= n_files - 2
    check_contract(dest, "ap_left_height_ratio")
    ds = load_dataset(dest)
    assert (ds.vertebrae.groupby("image_id")["label"].count() == 17).all()
    assert ds.vertebrae["ha_px"].between(5, 400).all()
    assert not re.search(rb"sunhl|Jan-20|Jul-20|Nov-20", all_output_bytes(dest))


# ---------------------------------------------------------------- BUU-LSPINE

def lateral_endplates(compressed=None, x0=40.0, y0=30.0, width=60.0, height=40.0, disc_front=14.0,
                      disc_back=6.0, tilt_deg=-15.0) -> np.ndarray:
    """11 endplates (anterior end first) of a lordotic lumbar spine facing LEFT; body k anterior height set."""
    compressed = compressed or {}
    theta = math.radians(tilt_deg)  # L1's upper endplate: anterior end higher (lordosis)
    a = np.array([x0, y0 + width * math.sin(-theta)])
    p = a + width * np.array([math.cos(theta), math.sin(theta)])
    lines = []
    for k in range(5):
        n = np.array([-(p - a)[1], (p - a)[0]]) / np.linalg.norm(p - a)  # downward normal
        lines.append((a.copy(), p.copy()))
        a, p = a + compressed.get(k, height) * n, p + height * n
        lines.append((a.copy(), p.copy()))
        n = np.array([-(p - a)[1], (p - a)[0]]) / np.linalg.norm(p - a)
        a, p = a + disc_front * n, p + disc_back * n
    lines.append((a.copy(), p.copy()))
    return np.array(lines)


def write_buu(folder: Path, name: str, lines: np.ndarray | None, *, size=(420, 200), mirror=False, header=False,
              swap_ends=False, image=True):
    folder.mkdir(parents=True, exist_ok=True)
    if image:
        cv2.imwrite(str(folder / f"{name}.jpg"), np.full(size, 90, np.uint8))
    if lines is None:
        return
    lines = lines.copy()
    if mirror:
        lines[:, :, 0] = size[1] - 1 - lines[:, :, 0]
    if swap_ends:
        lines = lines[:, ::-1]
    rows = [f"{a[0]:.2f},{a[1]:.2f},{b[0]:.2f},{b[1]:.2f},0" for a, b in lines]
    (folder / f"{name}.csv").write_text(("x1,y1,x2,y2,label\n" if header else "") + "\n".join(rows) + "\n")


@pytest.fixture()
def buu_src(tmp_path):
    la = tmp_path / "buu" / "LA"
    write_buu(la, "0001-F-037Y1", lateral_endplates(compressed={2: 22.0}))
    write_buu(la, "0002-M-061Y1", lateral_endplates(compressed={2: 22.0}), mirror=True, header=True, swap_ends=True)
    write_buu(la, "0003-F-050Y1", lateral_endplates()[:10])  # S1 missing: wrong point count
    write_buu(la, "0004-M-070Y1", lateral_endplates(y0=300.0))  # runs below the image
    write_buu(la, "0005-F-045Y1", lateral_endplates(), image=False)  # CSV without image
    write_buu(la, "0006-F-045Y1", lateral_endplates(disc_front=10, disc_back=10, tilt_deg=0))  # nothing to tell
    return tmp_path / "buu"


def test_buu_lspine_import(buu_src, tmp_path):
    dest, mapping = tmp_path / "raw" / "buu", tmp_path / "private.csv"
    rc = main(["import", "buu-lspine", str(buu_src), str(dest), "--salt", SALT, "--mapping", str(mapping)])
    assert rc == 1
    check_contract(dest, "vc_anterior")
    ds = load_dataset(dest)
    table = pd.read_csv(mapping).set_index("source_file")
    left, right = table.loc["0001-F-037Y1", "image_id"], table.loc["0002-M-061Y1", "image_id"]
    sides = ds.images.set_index("image_id")["anterior_side"]
    assert sides[left] == "left" and sides[right] == "right"
    reasons = pd.read_csv(dest / "import_skipped.csv").set_index("image_id")["reason"]
    assert "wrong point count: 10" in reasons[table.loc["0003-F-050Y1", "image_id"]]
    assert "outside" in reasons[table.loc["0004-M-070Y1", "image_id"]]
    assert "no image" in reasons[table.loc["0005-F-045Y1", "image_id"]]
    assert "ambiguous" in reasons[table.loc["0006-F-045Y1", "image_id"]]
    for image_id in (left, right):
        vert = ds.vertebrae[ds.vertebrae.image_id == image_id].set_index("label")
        assert list(vert["level"]) == ["L1", "L2", "L3", "L4", "L5"]
        assert vert.loc[3, "ha_px"] == pytest.approx(22.0, abs=0.05)  # anterior corners found on both sides
        assert vert.loc[3, "hp_px"] == pytest.approx(40.0, abs=0.05)
        anterior_further_left = (vert["as_x"] < vert["ps_x"]).all()
        assert anterior_further_left == (image_id == left)
        meas = ds.measurements[ds.measurements.image_id == image_id].set_index("label")
        assert sorted(meas.index) == [2, 3, 4]
        assert meas.loc[3, "value_true"] == pytest.approx(45.0, abs=0.2)
        assert meas.loc[3, "genant_grade"] == 3
    # patient number, sex and age from the names stay out; the two patients are two subjects
    assert ds.images["subject_id"].nunique() == 2
    assert not re.search(rb"0001-F|037Y|061Y", all_output_bytes(dest))


# ---------------------------------------------------------------- folder (with DICOM)

def body_mask(shape, boxes, values=None) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        mask[y:y + h, x:x + w] = values[i] if values else i + 1
    return mask


BOXES = [(30, 10, 50, 30), (30, 48, 50, 18), (30, 74, 50, 30), (30, 112, 50, 30)]  # body 2 compressed


@pytest.fixture()
def folder_src(tmp_path):
    from test_dicom import make_dicom

    src = tmp_path / "folder"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    shape = (160, 110)
    rng = np.random.default_rng(0)
    # DICOM carrying patient name/id/birth date, MONOCHROME1, anterior to the right by PatientOrientation
    make_dicom(src / "images" / "Doe Jane 1950.dcm", rng.integers(0, 4000, shape), photometric="MONOCHROME1",
               spacing=(0.2, 0.2), orientation=("A", "F"))
    cv2.imwrite(str(src / "masks" / "Doe Jane 1950.png"), body_mask(shape, BOXES, values=[7, 3, 9, 12]))
    cv2.imwrite(str(src / "images" / "second.png"), rng.integers(0, 255, shape, dtype=np.uint8))
    cv2.imwrite(str(src / "masks" / "second.png"), body_mask(shape, BOXES, values=[255] * 4))  # binary
    cv2.imwrite(str(src / "images" / "nomask.png"), np.zeros(shape, np.uint8))
    cv2.imwrite(str(src / "images" / "wrongsize.png"), np.zeros(shape, np.uint8))
    cv2.imwrite(str(src / "masks" / "wrongsize.png"), np.zeros((10, 10), np.uint8))
    (src / "subjects.csv").write_text("image,subject\nDoe Jane 1950.dcm,Jane Doe\nsecond,Jane Doe\n")
    (src / "readings.csv").write_text("image,label,value,level,fractured\nDoe Jane 1950,3,33.5,L2,1\n"
                                      "second,2,31.0,,\n")
    return src


def test_folder_import_with_dicom_keeps_phi_out(folder_src, tmp_path):
    dest, mapping = tmp_path / "raw" / "fold", tmp_path / "private" / "map.csv"
    rc = main(["import", "folder", str(folder_src), str(dest), "--salt", SALT, "--mapping", str(mapping)])
    assert rc == 1  # nomask and wrongsize skipped
    check_contract(dest, "vc_anterior")
    ds = load_dataset(dest)
    table = pd.read_csv(mapping).set_index("source_file")
    dcm_id, png_id = table.loc["Doe Jane 1950.dcm", "image_id"], table.loc["second.png", "image_id"]
    assert len(ds.images) == 2 and ds.images["subject_id"].nunique() == 1
    meta = ds.images.set_index("image_id")
    assert meta.loc[dcm_id, "anterior_side"] == "right" and meta.loc[dcm_id, "pixel_spacing_mm"] == 0.2
    assert meta.loc[png_id, "anterior_side"] == "left"  # assumed, and reported
    reasons = " | ".join(pd.read_csv(dest / "import_skipped.csv")["reason"])
    assert "no mask" in reasons and "differs from image size" in reasons
    for image_id in (dcm_id, png_id):
        mask = read_mask(ds.mask_path(image_id))
        assert mask[20, 50] == 1 and mask[55, 50] == 2 and mask[120, 50] == 4  # renumbered top to bottom
        vert = ds.vertebrae[ds.vertebrae.image_id == image_id].set_index("label")
        assert vert.loc[2, "ha_px"] == pytest.approx(18, abs=1.5) and vert.loc[1, "ha_px"] == pytest.approx(30, abs=1.5)
        assert (vert["as_x"] > vert["ps_x"]).all() == (image_id == dcm_id)
        meas = ds.measurements[ds.measurements.image_id == image_id].set_index("label")
        assert meas.loc[2, "value_true"] == pytest.approx(vertebral_compression(18, 30, 30), abs=5)
    # reader values by source label: label 3 of the DICOM's mask is its second body from the top
    dcm_meas = ds.measurements[ds.measurements.image_id == dcm_id].set_index("label")
    assert dcm_meas.loc[2, "value_reader"] == 33.5 and dcm_meas.loc[2, "genant_grade"] == 2
    assert dcm_meas.loc[3, "value_reader"] == pytest.approx(dcm_meas.loc[3, "value_true"])
    dcm_vert = ds.vertebrae[ds.vertebrae.image_id == dcm_id].set_index("label")
    assert dcm_vert.loc[2, "level"] == "L2" and dcm_vert.loc[2, "fractured"] == 1
    png_meas = ds.measurements[ds.measurements.image_id == png_id].set_index("label")
    assert png_meas.loc[2, "value_reader"] == 31.0
    # DICOM pixels arrive inverted (MONOCHROME1) and nothing of the patient reaches the dataset
    blob = all_output_bytes(dest)
    for needle in (b"Doe", b"Jane", b"PID-98765", b"19500102", b"1950", b"second", b"nomask"):
        assert needle not in blob, needle
    private = mapping.read_bytes()  # source names live only here; DICOM tag values not even here
    assert b"Doe Jane 1950.dcm" in private and b"PID-98765" not in private and b"19500102" not in private


# ---------------------------------------------------------------- workflow on an imported dataset

def test_workflow_runs_on_imported_dataset(root, bin_dir, tmp_path):
    src = tmp_path / "aasce"
    write_aasce(src, "case-1 A AP", aasce_points(x0=40), size=(300, 120))
    write_aasce(src, "case-2 A AP", aasce_points(x0=45), size=(300, 120))
    write_aasce(src, "case-3 B AP", aasce_points(x0=35), size=(300, 120))
    config = tmp_path / "config.yaml"
    config.write_text(f"data: {{source: aasce, name: aasce_t, path: '{src}'}}\npreprocess: {{image_size: 64}}\n"
                      "split: {strata: 1, val_share: 0.0, test_share: 0.34}\n")
    snakefile = root / "Snakefile"
    assert "rules/import.smk" in snakefile.read_text()
    work = tmp_path / "run"
    targets = ["results/split/split.csv", "results/preprocessed/transforms.csv"]
    env = {**os.environ, "VCMEASURE_SALT": "wf-salt"}
    cmd = [str(bin_dir / "snakemake"), "-s", str(snakefile), "--directory", str(work), "--configfile", str(config),
           "--cores", "2", *targets]
    dry = subprocess.run([*cmd, "-n"], capture_output=True, text=True, env=env, timeout=300)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "import_dataset" in dry.stdout and "simulate_cohort" not in dry.stdout
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    check_contract(work / "data/raw/aasce_t", "ap_left_height_ratio")
    split = pd.read_csv(work / "results/split/split.csv")
    assert len(split) == 3 and set(split["split"]) <= {"train", "val", "test"}
    assert len(pd.read_csv(work / "results/preprocessed/transforms.csv")) == 3
    assert (work / ".private/aasce_t_mapping.csv").is_file()
    outputs = [p for p in work.rglob("*") if p.is_file() and ".private" not in p.parts and ".snakemake" not in p.parts]
    assert not any(b"case-" in p.read_bytes() or b"wf-salt" in p.read_bytes() for p in outputs)


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLE.is_dir(), reason="shared AASCE sample not present")
def test_whole_workflow_on_the_imported_aasce_sample(root, bin_dir, tmp_path):
    """Issue 10: the real AASCE sample, imported by config, runs through every step of the tiny config; the
    tables name its measure (ap_left_height_ratio) and never call it VC; no source name leaves .private/."""
    extra = tmp_path / "aasce.yaml"
    extra.write_text(f"data: {{source: aasce, name: aasce_sample, path: '{SAMPLE / 'boostnet_labeldata'}', "
                     "allow_skipped: true}\n")
    work = tmp_path / "run"
    env = {**os.environ, "VCMEASURE_SALT": "ci-salt-aasce"}
    cmd = [str(bin_dir / "snakemake"), "-s", str(root / "Snakefile"), "--directory", str(work), "--cores", "2",
           "--configfile", str(root / "config/tiny.yaml"), str(extra), "--resources", "gpu=1"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    table2 = (work / "results/tables/table2_regression.md").read_text()
    summary = (work / "results/summary.md").read_text()
    assert "ap_left_height_ratio" in table2 and "ap_left_height_ratio" in summary
    assert "VC (%)" not in table2
    t1 = pd.read_csv(work / "results/tables/table1_segmentation.csv")
    assert set(t1["architecture"]) == {"unet", "resunet", "r2unet"}
    outputs = [p for p in (work / "results").rglob("*") if p.is_file()] + \
              [p for p in (work / "data").rglob("*") if p.is_file()]
    assert not any(b"sunhl" in p.read_bytes() for p in outputs), "a source file name leaked into the outputs"
