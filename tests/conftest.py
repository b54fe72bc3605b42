"""Shared pytest fixtures. Test data is generated in the tests, small."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_HOME", str(ROOT / ".keras"))
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("VCMEASURE_GPUS", "0")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    return Path(sys.executable).parent


def _tree_files(root: Path) -> list[str]:
    """Tracked plus untracked-but-not-ignored files: what a clean clone of this working tree would hold."""
    import subprocess

    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True,
                         check=True).stdout.decode()
    return sorted(f for f in out.split("\0") if f and (root / f).is_file())


def copy_repo(root: Path, dest: Path) -> Path:
    """Copy the working tree (as a clean clone would have it) into ``dest`` and make it a fresh git repo."""
    import shutil
    import subprocess

    dest.mkdir(parents=True, exist_ok=True)
    for rel in _tree_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], cwd=dest, check=True)
    return dest


def tree_hash(root: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for rel in _tree_files(root):
        if rel.startswith(("tests/", "docs/", "README")):
            continue  # the workflow's results do not depend on these
        h.update(rel.encode())
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A copy of the repository in which `dvc repro` ran the whole workflow on config/tiny.yaml.

    Cached under $VCMEASURE_TINY_CACHE (default /tmp/vcmeasure-tiny) by a hash of the workflow's files, so the
    end-to-end, DVC and cluster tests share one run per code version.
    """
    import shutil
    import subprocess

    cache = Path(os.environ.get("VCMEASURE_TINY_CACHE", "/tmp/vcmeasure-tiny")) / tree_hash(ROOT)
    done = cache / ".tiny-run-ok"
    if done.exists():
        return cache / "repo"
    if cache.exists():
        shutil.rmtree(cache)
    repo = copy_repo(ROOT, cache / "repo")
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("config/config.yaml", "config/tiny.yaml").replace("cores: all",
                                                                                                    "cores: 2"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "-q"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=1800)
    (cache / "repro.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    done.write_text("ok\n")
    return repo
