"""The workflow on a real SLURM cluster through profiles/slurm (issue 11; DESIGN §5 "GPUs", §2 profiles/slurm).

`make test-cluster` (root; CI runs it after `make test`): tools/slurm/up.sh installs and starts a throw-away
single-node SLURM 22.05 with accounting (munge, MariaDB, slurmdbd, slurmctld, slurmd) and four fake GPUs; the
tiny config runs through the profile exactly as docs/cluster.md tells users to; then
- sacct lists every planned non-local job, each COMPLETED, under the profile's partitions and account, and the
  training jobs (train_segmentation, train_regression) allocated gres/gpu=1 on the gpu partition;
- every table and statistic equals the local run's (the shared `tiny_run`: snakemake --cores 2 on
  config/tiny.yaml): byte for byte, or numerically to 1e-6 where a float's last digit may differ.
The daemons are stopped by their PIDs (tools/slurm/down.sh) even when something fails.

Dev/debug: VCMEASURE_CLUSTER_TARGETS="results/split/split.csv ..." builds only those targets, on SLURM and in
a plain local run (instead of `tiny_run`), for a partial workflow.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, copy_repo

pytestmark = pytest.mark.cluster

BIN = Path(sys.executable).parent
GPU_RULES = ("train_segmentation", "train_regression")
RUN_TIMEOUT_S = int(os.environ.get("VCMEASURE_CLUSTER_TIMEOUT_S", "1500"))
TARGETS = os.environ.get("VCMEASURE_CLUSTER_TARGETS", "").split()
# What the README's cluster section runs; the faster first status poll only shortens the test.
SLURM_CMD = ["snakemake", "--profile", "profiles/slurm", "--configfile", "config/tiny.yaml",
             "--slurm-init-seconds-before-status-checks", "5"]
RTOL = 1e-6
_TIMES: dict[str, float] = {}


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}


def _report(request, line: str) -> None:
    """Print past pytest's output capture: the timings belong in the CI log."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line(f"[test_cluster] {line}")


@pytest.fixture(scope="module")
def slurm_cluster(request) -> Path:
    """A running single-node SLURM; torn down by PID whatever happens (the finalizer is registered first)."""
    if os.geteuid() != 0:
        pytest.fail("the cluster test installs and starts SLURM daemons: run `make test-cluster` as root")
    state = Path(os.environ.get("VCMEASURE_SLURM_DIR", "/tmp/vcmeasure-slurm"))

    def down() -> None:
        subprocess.run([str(ROOT / "tools/slurm/down.sh")], capture_output=True, timeout=120, check=False)

    request.addfinalizer(down)
    t0 = time.monotonic()
    up = subprocess.run([str(ROOT / "tools/slurm/up.sh")], capture_output=True, text=True, timeout=900)
    _TIMES["slurm_up_s"] = time.monotonic() - t0
    assert up.returncode == 0, (up.stdout + up.stderr)[-4000:]
    _report(request, f"cluster up in {_TIMES['slurm_up_s']:.0f} s")
    return state


def _planned_jobs(repo: Path) -> Counter:
    """Jobs per rule that the profile submits to SLURM (a dry run lists them as `rule X:` or
    `checkpoint X:`)."""
    dry = subprocess.run([*SLURM_CMD, "-n", *TARGETS], cwd=repo, env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-4000:]
    planned = Counter(re.findall(r"^(?:rule|checkpoint) (\w+):$", dry.stdout + dry.stderr, flags=re.M))
    planned.pop("all", None)  # `localrules: all` in the Snakefile; a dry run does not mark it local
    return planned


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory, request) -> tuple[Path, Counter]:
    repo = copy_repo(ROOT, tmp_path_factory.mktemp("cluster") / "repo")
    planned = _planned_jobs(repo)
    log = repo / "slurm-run.log"
    t0 = time.monotonic()
    with open(log, "w") as fh:  # timeout -s KILL: a run that loses track of its jobs would never end
        proc = subprocess.run(["timeout", "-s", "KILL", str(RUN_TIMEOUT_S), *SLURM_CMD, *TARGETS], cwd=repo,
                              env=_env(), stdout=fh, stderr=subprocess.STDOUT, check=False)
    _TIMES["slurm_run_s"] = time.monotonic() - t0
    _report(request, f"snakemake --profile profiles/slurm finished in {_TIMES['slurm_run_s']:.0f} s "
                     f"(rc {proc.returncode}); {sum(planned.values())} SLURM jobs planned: {dict(planned)}")
    if proc.returncode != 0:
        slurm_logs = sorted((repo / "logs/slurm").rglob("*.log"))[-3:]
        tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in slurm_logs)
        pytest.fail(f"SLURM run failed (rc {proc.returncode}; 137 = killed after {RUN_TIMEOUT_S} s):\n"
                    f"{log.read_text()[-4000:]}\n{tails}")
    return repo, planned


@pytest.fixture(scope="module")
def local_run(request, tmp_path_factory) -> Path:
    if not TARGETS:
        return request.getfixturevalue("tiny_run")  # the suite's shared local run of config/tiny.yaml
    repo = copy_repo(ROOT, tmp_path_factory.mktemp("local") / "repo")
    proc = subprocess.run(["timeout", "-s", "KILL", str(RUN_TIMEOUT_S), "snakemake", "--configfile",
                           "config/tiny.yaml", "--cores", "2", *TARGETS], cwd=repo, env=_env(),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return repo


def _sacct() -> list[dict[str, str]]:
    fields = ["JobID", "State", "Partition", "Account", "AllocTRES", "Comment"]
    out = subprocess.run(["sacct", "-X", "-a", "-n", "-P", "-S", "2000-01-01", f"--format={','.join(fields)}"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines() if line.strip()]
    for row in rows:  # the plugin's --comment is rule_<name> or rule_<name>_wildcards_<values>
        row["rule"] = row["Comment"][len("rule_"):].split("_wildcards_")[0] if row["Comment"].startswith(
            "rule_") else ""
    return [r for r in rows if r["rule"]]


def test_jobs_went_through_slurm(slurm_run):
    _, planned = slurm_run
    jobs = _sacct()
    assert Counter(j["rule"] for j in jobs) == planned  # every planned job, once, and nothing else
    if not TARGETS:
        assert set(GPU_RULES) <= set(planned), f"training rules missing from the plan: {dict(planned)}"
    for job in jobs:
        assert job["State"] == "COMPLETED", job
        assert job["Account"] == "vcmeasure", job
        # GPU jobs (training, and any rule the profile sends to the gpu partition) got exactly one GPU;
        # nothing on the CPU partition asked for one (a gpu=1 rule missing from the profile would).
        tres = job["AllocTRES"].split(",")
        if job["rule"] in GPU_RULES or job["Partition"] == "gpu":
            assert job["Partition"] == "gpu" and "gres/gpu=1" in tres, job
        else:
            assert job["Partition"] == "cpu" and not any(t.startswith("gres/gpu") for t in tres), job


def test_each_job_left_a_slurm_log(slurm_run):
    repo, planned = slurm_run
    for rule in planned:
        assert list((repo / "logs/slurm" / f"rule_{rule}").rglob("*.log")), rule


def _compared_files(repo: Path) -> list[str]:
    files = [p for d in ("results/tables", "results/stats") if (repo / d).is_dir() for p in (repo / d).rglob("*")]
    files += [repo / "results/split/split.csv"]
    return sorted(str(p.relative_to(repo)) for p in files if p.is_file())


_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|nan|inf", re.I)


def _close(a: float, b: float, decimals: int | None = None) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    slack = 1.0001 * 10.0 ** -decimals if decimals else 0.0  # a rounded last digit may flip
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=max(1e-12, slack))


def _same_text(a: str, b: str) -> bool:
    """Equal text apart from numbers that agree to RTOL (or to their last printed digit)."""
    if _NUM.split(a) != _NUM.split(b):
        return False
    na, nb = _NUM.findall(a), _NUM.findall(b)
    return len(na) == len(nb) and all(
        _close(float(x), float(y), len(x.split(".")[1]) if "." in x and "e" not in x.lower() else None)
        for x, y in zip(na, nb, strict=True))


def _same_json(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return _close(float(a), float(b))
    return a == b


def _same_csv(a: Path, b: Path) -> bool:
    da, db = pd.read_csv(a), pd.read_csv(b)
    if list(da.columns) != list(db.columns) or da.shape != db.shape:
        return False
    for col in da.columns:
        x, y = da[col], db[col]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            if not all(_close(float(u), float(v)) for u, v in zip(x, y, strict=True)):
                return False
        elif not x.astype(str).equals(y.astype(str)):
            return False
    return True


def test_results_equal_the_local_run(slurm_run, local_run, request):
    repo, _ = slurm_run
    ours, theirs = _compared_files(repo), _compared_files(local_run)
    assert ours == theirs
    assert "results/split/split.csv" in ours
    if not TARGETS:
        assert any(f.startswith("results/tables/table2") for f in ours), ours
    exact, differ = 0, []
    for rel in ours:
        a, b = repo / rel, local_run / rel
        if a.read_bytes() == b.read_bytes():
            exact += 1
            continue
        if rel.endswith(".csv"):
            same = _same_csv(a, b)
        elif rel.endswith(".json"):
            same = _same_json(json.loads(a.read_text()), json.loads(b.read_text()))
        else:
            same = _same_text(a.read_text(errors="replace"), b.read_text(errors="replace"))
        if not same:
            differ.append(rel)
    _report(request, f"{len(ours)} result files compared: {exact} byte-identical, "
                     f"{len(ours) - exact - len(differ)} equal to rtol {RTOL}, {len(differ)} different")
    assert not differ, differ
