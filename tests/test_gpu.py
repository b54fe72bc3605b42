"""gpu.claim_gpu: one slot per job by file lock, CUDA_VISIBLE_DEVICES set, SLURM value kept (DESIGN §5)."""

import os
import subprocess
import sys

import pytest

from vcmeasure import gpu


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    yield
    gpu.release_gpus()


def test_no_gpu_means_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("VCMEASURE_GPUS", "0")
    assert gpu.detect_gpus() == 0
    assert gpu.claim_gpu(tmp_path) is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_slots_are_exclusive_and_released(tmp_path):
    assert gpu.claim_gpu(tmp_path, n_gpus=2) == "0"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert gpu.claim_gpu(tmp_path, n_gpus=2) == "1"
    with pytest.raises(TimeoutError, match="no free GPU slot"):
        gpu.claim_gpu(tmp_path, n_gpus=2, wait_s=0, poll_s=0.01)
    gpu.release_gpus()
    assert gpu.claim_gpu(tmp_path, n_gpus=2) == "0"


def test_other_process_holds_a_slot_until_it_exits(tmp_path):
    code = ("import sys, time; from vcmeasure import gpu; "
            f"print(gpu.claim_gpu({str(tmp_path)!r}, n_gpus=2), flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout.readline().strip() == "0"
        assert gpu.claim_gpu(tmp_path, n_gpus=2) == "1"
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    gpu.release_gpus()
    # the exited job's slot is free again
    assert gpu.claim_gpu(tmp_path, n_gpus=2) == "0"


def test_slurm_allocation_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert gpu.claim_gpu(tmp_path, n_gpus=8) == "3"
    assert not list(tmp_path.iterdir())  # no lock taken


def test_gpu_count_override(monkeypatch):
    monkeypatch.setenv("VCMEASURE_GPUS", "3")
    assert gpu.detect_gpus() == 3
