"""Foundation: package, CLI, pinned environment, workflow skeleton, config validation."""

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from vcmeasure import __version__, measures
from vcmeasure.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_subcommands(capsys):
    assert main([]) == 0
    assert "usage: vcmeasure" in capsys.readouterr().out


def test_eq1_and_grades():
    # normal neighbours 25 mm, middle body 15 mm: 40 % compression
    assert measures.vertebral_compression(15, 25, 25) == pytest.approx(40.0)
    assert measures.vertebral_compression(25, 20, 20) == pytest.approx(-25.0)
    assert list(measures.genant_grade([0, 19.99, 20, 24.9, 25, 39.9, 40, 59])) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert measures.is_surgical(40.0) is False and measures.is_surgical(40.01) is True
    assert measures.is_fractured(20.0) is True and measures.is_fractured(19.9) is False


def _lock(root):
    pins = {}
    for line in (root / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, ver = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = ver.strip()
    return pins


def test_conda_envs_agree_with_lock(root):
    lock = _lock(root)
    envs = sorted((root / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        assert pip, env
        for entry in pip:
            name, ver = entry.split("==")
            key = re.sub(r"[-_.]+", "-", name).lower()
            assert lock.get(key) == ver, f"{env.name}: {entry} disagrees with requirements.lock ({lock.get(key)})"
        py = [d for d in spec["dependencies"] if isinstance(d, str) and d.startswith("python=")]
        assert py == [f"python={sys.version_info.major}.{sys.version_info.minor}"]


def test_lock_pins_the_stack(root):
    lock = _lock(root)
    for pkg in ["tensorflow-cpu", "keras", "snakemake", "snakemake-executor-plugin-slurm", "dvc",
                "opencv-python-headless", "scikit-image", "pandas", "scipy", "statsmodels", "matplotlib",
                "pydicom", "pytest", "ruff"]:
        assert pkg in lock, pkg
    assert "opencv-python" not in lock  # the GUI build would shadow the headless cv2
    assert lock["keras"].startswith("3.")


def _snakemake(root, bin_dir, *args, cwd=None):
    return subprocess.run([str(bin_dir / "snakemake"), *args], cwd=cwd or root, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(
    "override, key",
    [
        ("segmentation:\n  epochs: -3\n", "segmentation.epochs"),
        ("segmentation:\n  epochs: many\n", "segmentation.epochs"),
        ("segmentation:\n  epoch: 3\n", "segmentation.epoch"),
        ("bogus_key: 1\n", "bogus_key"),
        ("regression:\n  models: [mrdn, vgg]\n", "regression.models.1"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, root, bin_dir, override, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(override)
    proc = _snakemake(root, bin_dir, "-n", "--cores", "1", "--configfile", str(bad),
                      "--directory", str(tmp_path))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"'{key}'" in out, out[-2000:]
    assert "Job stats" not in out and not (tmp_path / "results").exists()


def test_paper_config_dry_run(root, bin_dir, tmp_path):
    proc = _snakemake(root, bin_dir, "-n", "--cores", "4", "--quiet", "rules", "--directory", str(tmp_path),
                      "--resources", "gpu=4")
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_ruff_clean(root, bin_dir):
    proc = subprocess.run([str(bin_dir / "ruff"), "check", "."], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
