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
        "versions": {p: ver(p) for p in ["keras", "tensorflow-cpu", "tensorflow", "torch", "jax",
                                         "opencv-python-headless", "scikit-image", "snakemake", "numpy"]},
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
    return {"name": "snakemake_dag", "rows": rows,
            "title": "Snakemake dry run of the paper-scale workflow: time and job count by cohort size"}


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


def bench_core_scaling(n_images: int = 16, repeats: int = 3) -> dict:
    """Speed-up from 1 to 2 worker threads for the CPU-bound steps (synthetic generation, preprocessing)."""
    from .preprocess import preprocess_dataset
    from .synth import simulate_cohort

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timings = {}
        for threads in (1, 2):
            t = []
            for r in range(repeats):
                t0 = time.perf_counter()
                simulate_cohort(tmp / f"syn{threads}_{r}", preset="quick", n_images=n_images, seed=1, threads=threads)
                t.append(time.perf_counter() - t0)
            timings[("simulate_cohort", threads)] = sorted(t)[len(t) // 2]
            t = []
            for r in range(repeats):
                t0 = time.perf_counter()
                preprocess_dataset(tmp / "syn1_0", tmp / f"pre{threads}_{r}", size=512, threads=threads)
                t.append(time.perf_counter() - t0)
            timings[("preprocess", threads)] = sorted(t)[len(t) // 2]
        for step in ("simulate_cohort", "preprocess"):
            one, two = timings[(step, 1)], timings[(step, 2)]
            rows.append({"step": step, "images": n_images, "images_per_s_1_core": round(n_images / one, 2),
                         "images_per_s_2_cores": round(n_images / two, 2), "speedup": round(one / two, 2)})
    return {"name": "core_scaling", "title": "Speed-up from 1 to 2 cores (quick-preset images)", "rows": rows}


def bench_inference(size: int = 512, filters: int = 64, window: int = 128, n_images: int = 2, repeats: int = 1) -> dict:
    """End-to-end latency per paper-size radiograph with paper-size (untrained) R2U-Net and MRDN."""
    from .measure import bench_measure, export_models
    from .models.regression import build_regression_model
    from .models.segmentation import build_segmentation_model
    from .synth import simulate_cohort

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seg, reg = tmp / "seg.keras", tmp / "mrdn.keras"
        build_segmentation_model("r2unet", size, filters).save(seg)
        build_regression_model("mrdn", window, filters).save(reg)
        (tmp / "selected.txt").write_text("r2unet\n")
        export_models(tmp / "selected.txt", seg, reg, tmp / "bundle", image_size=size, clahe_clip_limit=2.0,
                      clahe_tile_grid=8, threshold=0.5, min_component_px=30, window_size=window)
        data = simulate_cohort(tmp / "cohort", preset="paper", n_images=n_images, seed=3)
        images = sorted((data / "images").glob("*.png"))
        res = bench_measure(tmp / "bundle", images, repeats=repeats)
    res["note"] = (f"Untrained R2U-Net ({size} px, {filters} filters) and MRDN ({window} px): the networks' cost "
                   "does not depend on their weights; the geometry runs on whatever the untrained net outputs.")
    return res


def _segmentation_rows(sizes, archs, filters, steps=2, batch=5) -> dict:
    from .bench_models import bench_segmentation

    rows = [bench_segmentation(a, size=s, base_filters=f, batch=batch, steps=steps)
            for s, f in zip(sizes, filters, strict=True) for a in archs]
    return {"name": "segmentation", "rows": rows, "note": RSS_NOTE,
            "title": f"Segmentation networks at {sizes[0]} px: parameters, training and inference speed"}


def _regression_rows(sizes, models, filters) -> dict:
    from .bench_regression import bench_regressor

    rows = [bench_regressor(m, size=s, filters=f, batch=8, steps=3) for s, f in zip(sizes, filters, strict=True)
            for m in models]
    return {"name": "regression", "rows": rows, "note": RSS_NOTE,
            "title": f"Regressors at {sizes[0]} px: parameters, training and inference speed"}


def _preprocess_rows() -> dict:
    from .bench_preprocess import bench_loader_overhead, bench_preprocess

    pre = bench_preprocess(n=8, size=512)
    loader = bench_loader_overhead()
    return {"name": "preprocess", "title": "Preprocessing (OpenCV vs. scikit-image CLAHE) and loader overhead",
            "rows": [pre, loader]}


SEG = ["unet", "resunet", "r2unet"]
RSS_NOTE = "peak_rss_mb is the process high-water mark, so within a table it is cumulative over the rows above."
# Each item runs in its own process: peak memory is per item, and a backend can be chosen per process.
ITEMS = {
    "preprocess": (_preprocess_rows, {}),
    "segmentation_quick": (_segmentation_rows, {"sizes": [256], "archs": SEG, "filters": [16]}),
    # batch 1: a batch of five 512 px images with 64 base filters does not fit a 24 GiB CPU machine
    "segmentation_paper": (_segmentation_rows, {"sizes": [512], "archs": SEG, "filters": [64], "steps": 1,
                                                "batch": 1}),
    "regression_quick": (_regression_rows, {"sizes": [64], "models": ["mrdn", "resnet50", "densenet121", "carn"],
                                            "filters": [16]}),
    "regression_paper": (_regression_rows, {"sizes": [128], "models": ["mrdn", "resnet50", "densenet121", "carn"],
                                            "filters": [64]}),
    "inference": (bench_inference, {}),
    "snakemake_dag": (bench_dag, {}),
    "core_scaling": (bench_core_scaling, {}),
}


def run_item(name: str) -> dict:
    fn, kwargs = ITEMS[name]
    res = fn(**kwargs)
    res.setdefault("name", name)
    res["seconds"] = None
    return res


def run_all(names=None, out_dir="results/bench", page="docs/performance.md", backend: str | None = None) -> dict:
    """Run every benchmark item in its own process and write the JSON files and the page."""
    env = dict(os.environ)
    if backend:
        env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = {}
    for name in names or ITEMS:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "vcmeasure.benchmark", name], capture_output=True, text=True,
                              env=env, timeout=1800)
        if proc.returncode != 0:
            # recorded, not fatal: the page says which item failed and how (e.g. killed for memory)
            why = "killed (out of memory?)" if proc.returncode < 0 else proc.stderr.strip().splitlines()[-1:]
            res = {"title": name, "rows": [], "note": f"FAILED (exit {proc.returncode}): {why}"}
        else:
            res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["seconds"] = round(time.perf_counter() - t0, 1)
        res["name"] = name
        results[name] = res
        print(f"bench {name}: {res['seconds']} s", file=sys.stderr)
    info = machine_info()
    if backend:
        info["keras_backend"] = backend
    write_results(results, out_dir, page, info)
    return results


if __name__ == "__main__":
    print(json.dumps(run_item(sys.argv[1]), default=str))
