"""GPU slot claiming for training jobs (DESIGN §5 "GPUs").

Snakemake's ``--resources gpu=4`` bounds how many gpu=1 jobs run at once but assigns no device ids. Each
training job therefore claims a free slot with an exclusive, non-blocking ``flock`` on ``gpu<i>.lock`` and
sets ``CUDA_VISIBLE_DEVICES`` *before* the framework is imported. The lock lives as long as the process,
so a crashed job frees its slot. Under SLURM the scheduler's ``CUDA_VISIBLE_DEVICES`` is kept as given.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

_HELD: list = []  # open lock files; closing them (process exit) releases the slot


def detect_gpus() -> int:
    """Number of NVIDIA GPUs, from ``VCMEASURE_GPUS`` if set, else ``nvidia-smi -L``; 0 without a driver."""
    if os.environ.get("VCMEASURE_GPUS", "").strip():
        return int(os.environ["VCMEASURE_GPUS"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def default_lock_dir() -> Path:
    return Path(os.environ.get("VCMEASURE_GPU_LOCK_DIR", "/tmp/vcmeasure-gpu-locks"))


def claim_gpu(lock_dir: str | Path | None = None, n_gpus: int | None = None, wait_s: float = 3600.0,
              poll_s: float = 2.0) -> str | None:
    """Claim one GPU slot and export ``CUDA_VISIBLE_DEVICES``; return the device id, or None for the CPU.

    Must run before TensorFlow/JAX/PyTorch are imported. Inside a SLURM job with a GPU allocation the
    scheduler's value is used unchanged.
    """
    if os.environ.get("SLURM_JOB_ID"):
        # The scheduler owns the devices: use its allocation as given; no allocation means the CPU.
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
        if not visible:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return visible or None
    n = detect_gpus() if n_gpus is None else n_gpus
    if n <= 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # no GPU: train on the CPU, never probe for CUDA
        return None
    lock_dir = Path(lock_dir) if lock_dir else default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        for i in range(n):
            fh = open(lock_dir / f"gpu{i}.lock", "a+")  # noqa: SIM115 - must stay open while the job runs
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            _HELD.append(fh)
            os.environ["CUDA_VISIBLE_DEVICES"] = str(i)
            return str(i)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU slot among {n} in {lock_dir} after {wait_s:.0f} s")
        time.sleep(poll_s)


def release_gpus() -> None:
    """Release every slot this process holds (normally process exit does it)."""
    while _HELD:
        fh = _HELD.pop()
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
