"""Preprocessing (DESIGN §5): orientation, CLAHE, resize + pad, exact transforms, dataset step, rules."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from fixtures_data import ImageSpec, make_dataset

from vcmeasure.errors import InputError
from vcmeasure.io import read_mask
from vcmeasure.preprocess import Transform, load_transforms, preprocess_dataset, preprocess_image

ROOT = Path(__file__).resolve().parents[1]

SHAPES = [(60, 90), (90, 60), (37, 37), (1000, 700), (30, 20)]  # portrait, landscape, square, down- and upscale


@pytest.mark.parametrize("flipped", [False, True])
@pytest.mark.parametrize("wh", SHAPES)
def test_points_round_trip(wh, flipped):
    w, h = wh
    tf = Transform.create(w, h, 64, flipped)
    pts = np.random.default_rng(1).uniform([-0.5, -0.5], [w - 0.5, h - 0.5], (50, 2))
    pre = tf.to_preprocessed(pts)
    assert np.all((pre >= -0.5) & (pre <= 63.5))
    np.testing.assert_allclose(tf.to_original(pre), pts, atol=1e-9)
    np.testing.assert_allclose(tf.to_preprocessed(tf.to_original(pre)), pre, atol=1e-9)


@pytest.mark.parametrize("wh", SHAPES)
def test_longer_side_is_size_and_padding_centred(wh):
    w, h = wh
    tf = Transform.create(w, h, 64, False)
    assert max(tf.resized_width, tf.resized_height) == 64
    assert abs(tf.resized_width / tf.resized_height - w / h) < 2 / min(tf.resized_width, tf.resized_height)
    assert tf.offset_x == (64 - tf.resized_width) // 2 and tf.offset_y == (64 - tf.resized_height) // 2


@pytest.mark.parametrize("flipped", [False, True])
@pytest.mark.parametrize("wh", SHAPES)
def test_mask_round_trip(wh, flipped):
    w, h = wh
    size = 64
    tf = Transform.create(w, h, size, flipped)
    rng = np.random.default_rng(2)
    if max(w, h) >= size:  # downscaled: preprocessed -> original -> preprocessed is exact
        pre = np.zeros((size, size), np.uint16)
        inner = rng.integers(0, 300, (tf.resized_height, tf.resized_width)).astype(np.uint16)
        pre[tf.offset_y:tf.offset_y + tf.resized_height, tf.offset_x:tf.offset_x + tf.resized_width] = inner
        back = tf.mask_to_original(pre)
        assert back.shape == (h, w) and back.dtype == np.uint16
        np.testing.assert_array_equal(tf.mask_to_preprocessed(back), pre)
    if max(w, h) <= size:  # upscaled: original -> preprocessed -> original is exact
        orig = rng.integers(0, 5, (h, w)).astype(np.uint8)
        np.testing.assert_array_equal(tf.mask_to_original(tf.mask_to_preprocessed(orig)), orig)


@pytest.mark.parametrize("side", ["left", "right"])
def test_points_follow_image_content(side):
    """A marked pixel and its mapped coordinate land on the same place in the preprocessed image and mask."""
    w, h = 200, 300
    img = np.zeros((h, w), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    img[100:120, 30:50] = 255
    mask[100:120, 30:50] = 1
    pre, tf = preprocess_image(img, side, size=100, clip_limit=2.0, tile_grid=4)
    assert pre.shape == (100, 100) and pre.dtype == np.uint8
    assert tf.flipped == (side == "right")
    centre = tf.to_preprocessed([[39.5, 109.5]])[0]
    m = tf.mask_to_preprocessed(mask)
    ys, xs = np.nonzero(m)
    assert abs(xs.mean() - centre[0]) < 0.6 and abs(ys.mean() - centre[1]) < 0.6
    yi, xi = np.unravel_index(np.argmax(cv2.GaussianBlur(pre.astype(float), (5, 5), 0)), pre.shape)
    assert abs(xi - centre[0]) <= 2 and abs(yi - centre[1]) <= 2
    # anterior faces left afterwards: the blob near the left (anterior) edge stays left only without a flip
    assert (centre[0] < 50) == (side == "left")


def test_16bit_copy_preprocesses_like_8bit():
    rng = np.random.default_rng(3)
    img8 = cv2.GaussianBlur(rng.integers(0, 256, (120, 80)).astype(np.uint8), (7, 7), 0)
    a, _ = preprocess_image(img8, "left", 64, 2.0, 4)
    b, _ = preprocess_image(img8.astype(np.uint16) * 257, "left", 64, 2.0, 4)
    np.testing.assert_array_equal(a, b)


def test_clahe_raises_local_contrast():
    rng = np.random.default_rng(4)
    low = (100 + 10 * cv2.GaussianBlur(rng.normal(size=(256, 256)), (0, 0), 3)).clip(0, 255).astype(np.uint8)
    low[0, 0], low[-1, -1] = 0, 255  # full range already: the gain comes from CLAHE, not the stretch
    out, _ = preprocess_image(low, "left", 256, 2.0, 8)
    assert out.std() > 1.5 * low[1:-1, 1:-1].std()


@pytest.fixture()
def dataset(tmp_path):
    specs = [
        ImageSpec("a_left8", "s1", 60, 90, "left", mode="gray8"),
        ImageSpec("b_right16", "s1", 90, 60, "right", mode="gray16"),
        ImageSpec("c_rgb", "s2", 50, 80, "right", mode="rgb"),
        ImageSpec("d_pal", "s3", 70, 70, "unknown", mode="palette"),
    ]
    return make_dataset(tmp_path / "ds", specs)


def test_preprocess_dataset(dataset, tmp_path):
    out = tmp_path / "pre"
    tfs = preprocess_dataset(dataset, out, size=48, clip_limit=2.0, tile_grid=4, threads=2)
    assert list(tfs["image_id"]) == ["a_left8", "b_right16", "c_rgb", "d_pal"]
    assert list(tfs["flipped"]) == [0, 1, 1, 0]
    loaded = load_transforms(out / "transforms.csv")
    raw_v = pd.read_csv(dataset / "vertebrae.csv")
    pre_v = pd.read_csv(out / "vertebrae.csv")
    assert list(pre_v.columns) == list(raw_v.columns) and len(pre_v) == len(raw_v)
    for image_id, tf in loaded.items():
        img = cv2.imread(str(out / "images" / f"{image_id}.png"), cv2.IMREAD_UNCHANGED)
        assert img.shape == (48, 48) and img.dtype == np.uint8
        m = read_mask(out / "masks" / f"{image_id}.png")
        orig_m = read_mask(dataset / "masks" / f"{image_id}.png")
        assert set(np.unique(m)) == set(np.unique(orig_m))
        rows = pre_v[pre_v.image_id == image_id]
        raw_rows = raw_v[raw_v.image_id == image_id]
        for c in ("as", "ai", "ps", "pi"):
            back = tf.to_original(rows[[f"{c}_x", f"{c}_y"]].to_numpy())
            np.testing.assert_allclose(back, raw_rows[[f"{c}_x", f"{c}_y"]].to_numpy(), atol=0.01)
        # anterior corners are on the left after canonical orientation, whatever the original side
        assert (rows["as_x"] < rows["ps_x"]).all()
        np.testing.assert_allclose(rows["ha_px"], np.hypot(rows.as_x - rows.ai_x, rows.as_y - rows.ai_y), atol=0.01)
        # each corner lies on (or next to) its own body in the preprocessed mask
        for _, r in rows.iterrows():
            x, y = int(round((r.as_x + r.ps_x) / 2)), int(round((r.as_y + r.ai_y) / 2))
            assert m[y, x] == r.label


def test_deterministic_output(dataset, tmp_path):
    preprocess_dataset(dataset, tmp_path / "p1", 48, 2.0, 4, threads=1)
    preprocess_dataset(dataset, tmp_path / "p2", 48, 2.0, 4, threads=2)
    for f in sorted((tmp_path / "p1").rglob("*.*")):
        assert f.read_bytes() == (tmp_path / "p2" / f.relative_to(tmp_path / "p1")).read_bytes(), f


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_image_fails_naming_file_without_output(dataset, tmp_path, damage):
    bad = dataset / "images" / "c_rgb.png"
    data = bad.read_bytes()
    bad.write_bytes({"truncate": data[: len(data) // 3], "garbage": b"not a png at all" * 20, "empty": b""}[damage])
    out = tmp_path / "pre"
    with pytest.raises(InputError, match="c_rgb.png"):
        preprocess_dataset(dataset, out, 48, 2.0, 4, threads=2)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pre")]  # no temp folder left either


def test_size_mismatch_is_an_input_error(dataset, tmp_path):
    cv2.imwrite(str(dataset / "masks" / "a_left8.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="a_left8.png"):
        preprocess_dataset(dataset, tmp_path / "pre", 48, 2.0, 4)


def _mini_snakefile(tmp: Path) -> Path:
    """A Snakefile with only this step's rules, so the test does not depend on the other steps' rules."""
    snakefile = tmp / "Snakefile"
    snakefile.write_text(
        f'configfile: "{ROOT}/config/config.yaml"\n'
        f'include: "{ROOT}/workflow/rules/common.smk"\n'
        f'include: "{ROOT}/workflow/rules/preprocess.smk"\n'
        f'include: "{ROOT}/workflow/rules/split.smk"\n'
        "rule all_pre:\n"
        '    input: "results/preprocessed/transforms.csv", "results/split/split.csv", "results/split/summary.md"\n'
        "    default_target: True\n"
    )
    return snakefile


def test_rules_dry_run_10000_images_is_a_handful_of_jobs(tmp_path):
    """No job per image: 10,000 images still give one preprocess and one split job, and the DAG builds fast."""
    ds = tmp_path / "data" / "raw" / "synthetic"
    (ds / "images").mkdir(parents=True)
    (ds / "masks").mkdir()
    ids = [f"img{i:05d}" for i in range(10_000)]
    for i in ids:
        (ds / "images" / f"{i}.png").touch()
    pd.DataFrame({"image_id": ids, "subject_id": ids, "anterior_side": "left", "pixel_spacing_mm": 0.1,
                  "width": 100, "height": 100, "source": "x"}).to_csv(ds / "images.csv", index=False)
    snakefile = _mini_snakefile(tmp_path)
    start = time.perf_counter()
    res = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-s", str(snakefile), "-d", str(tmp_path),
                          "-n", "--cores", "1", "--quiet", "rules"], capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    assert res.returncode == 0, res.stderr[-2000:]
    text = res.stdout + res.stderr
    assert "preprocess" in text and "split" in text
    assert "img00001" not in text
    assert elapsed < 30


def test_rules_run_on_tiny_dataset(tmp_path):
    specs = [ImageSpec(f"i{k}", f"s{k // 2}", 40, 60, "right" if k % 2 else "left", wedge=0.1 * k) for k in range(8)]
    make_dataset(tmp_path / "data" / "raw" / "synthetic", specs)
    snakefile = _mini_snakefile(tmp_path)
    (tmp_path / "small.yaml").write_text("preprocess:\n  image_size: 32\n")
    res = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-s", str(snakefile), "-d", str(tmp_path),
                          "--cores", "2", "--configfile", str(tmp_path / "small.yaml")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(list((tmp_path / "results/preprocessed/images").glob("*.png"))) == 8
    tfs = pd.read_csv(tmp_path / "results/preprocessed/transforms.csv")
    assert (tfs["size"] == 32).all()
    split = pd.read_csv(tmp_path / "results/split/split.csv")
    assert set(split["image_id"]) == {s.image_id for s in specs}
    assert (tmp_path / "logs/preprocess").is_dir()
