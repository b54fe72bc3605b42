"""One benchmark harness (`make bench` / `vcmeasure bench`): every speed and memory figure in one place.

Each figure is written with the machine, versions and Keras backend it ran on to ``results/bench/*.json`` and
summarised in ``docs/performance.md``. Ratios are measured side by side in one run, as medians over repeats;
nothing here is asserted by a test (speed targets live in benchmarks, not in timed tests).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .io import write_text


def machine_info() -> dict:
    """Machine, versions and backend, stamped on every figure."""
    import importlib.metadata as md

    def ver(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem_gib = round(mem_kb / 2**20, 1)
    except (OSError, AttributeError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "versions": {p: ver(p) for p in ["keras", "tensorflow-cpu", "tensorflow", "torch", "jax", "opencv-python-headless",
                                         "scikit-image", "snakemake", "numpy"]},
        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }


def bench_dag(sizes=(10, 1000, 10000), repeats: int = 3, snakefile: str | Path = "Snakefile") -> dict:
    """Dry-run time and job count of the paper-scale workflow for cohorts of ``sizes`` images.

    The DAG must not grow per image (no job per image): the job count stays constant across sizes.
    """
    snakefile = Path(snakefile).resolve()
    exe = str(Path(sys.executable).parent / "snakemake")
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "bench.yaml"
            cfg.write_text(f"synthetic:\n  n_images: {int(n)}\n")
            times, jobs = [], None
            for _ in range(repeats):
                t0 = time.perf_counter()
                proc = subprocess.run([exe, "-n", "--cores", "4", "--quiet", "rules", "-s", str(snakefile),
                                       "--directory", tmp, "--configfile", str(cfg), "--resources", "gpu=4"],
                                      capture_output=True, text=True, timeout=600)
                times.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    raise RuntimeError(f"dry run failed for n={n}: {proc.stderr[-1000:]}")
                m = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.MULTILINE)
                jobs = int(m.group(1)) if m else None
            times.sort()
            rows.append({"n_images": int(n), "dry_run_s": round(times[len(times) // 2], 3), "jobs": jobs})
    return {"name": "snakemake_dag", "rows": rows}


def write_results(results: dict[str, dict], out_dir: str | Path, page: str | Path, info: dict) -> None:
    """Write one JSON per benchmark and the human-readable performance page."""
    out_dir = Path(out_dir)
    for name, res in results.items():
        write_text(out_dir / f"{name}.json", json.dumps({"machine": info, **res}, indent=1, default=str) + "\n")
    write_text(page, render_page(results, info))


def _table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)\n"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def render_page(results: dict[str, dict], info: dict) -> str:
    vers = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    parts = [
        "# Performance\n",
        "Written by `make bench` (`vcmeasure bench`); every number below comes from that command's last run.\n",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; GPUs visible: "
        f"{info['gpus'] or 'none'}\n- Python {info['python']}; Keras backend `{info['keras_backend']}`\n"
        f"- Versions: {vers}\n",
    ]
    for name, res in results.items():
        parts.append(f"\n## {res.get('title', name)}\n")
        if res.get("note"):
            parts.append(f"\n{res['note']}\n")
        parts.append("\n" + _table(res.get("rows", [])))
    return "".join(parts)
