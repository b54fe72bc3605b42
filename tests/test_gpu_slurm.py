"""Under SLURM the scheduler's GPU assignment is kept (DESIGN §5 "GPUs", issue 11): vcmeasure.gpu.claim_gpu."""

import os

import pytest

from vcmeasure import gpu


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES", "VCMEASURE_GPUS", "VCMEASURE_GPU_LOCK_DIR"):
        monkeypatch.delenv(var, raising=False)
    yield monkeypatch
    gpu.release_gpus()


@pytest.mark.parametrize("given", ["0", "3", "1,2"])
def test_slurm_job_keeps_the_schedulers_devices(clean_env, tmp_path, given):
    clean_env.setenv("SLURM_JOB_ID", "4242")
    clean_env.setenv("CUDA_VISIBLE_DEVICES", given)
    locks = tmp_path / "locks"
    assert gpu.claim_gpu(lock_dir=locks, n_gpus=4) == given
    assert os.environ["CUDA_VISIBLE_DEVICES"] == given
    assert not locks.exists()  # no local slot was claimed


def test_slurm_job_ignores_busy_local_slots(clean_env, tmp_path):
    # All local slots held by another job: outside SLURM this would wait; inside, SLURM's device is used at once.
    locks = tmp_path / "locks"
    assert gpu.claim_gpu(lock_dir=locks, n_gpus=1) == "0"  # this process now holds the only slot
    clean_env.setenv("SLURM_JOB_ID", "7")
    clean_env.setenv("CUDA_VISIBLE_DEVICES", "5")
    assert gpu.claim_gpu(lock_dir=locks, n_gpus=1, wait_s=0.0) == "5"


def test_outside_slurm_a_preset_value_is_replaced_by_a_claimed_slot(clean_env, tmp_path):
    # The contrast: without SLURM_JOB_ID a stale CUDA_VISIBLE_DEVICES is not trusted; a free slot is claimed.
    clean_env.setenv("CUDA_VISIBLE_DEVICES", "3")
    locks = tmp_path / "locks"
    assert gpu.claim_gpu(lock_dir=locks, n_gpus=2) == "0"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert (locks / "gpu0.lock").read_text().strip() == str(os.getpid())


def test_slurm_job_without_gpu_allocation_falls_back_to_the_cpu(clean_env, tmp_path):
    # A CPU-only SLURM job (no CUDA_VISIBLE_DEVICES from the scheduler) on a node without GPUs trains on the CPU.
    clean_env.setenv("SLURM_JOB_ID", "9")
    assert gpu.claim_gpu(lock_dir=tmp_path / "locks", n_gpus=0) is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_slurm_job_without_gpu_allocation_never_claims_local_gpus(clean_env, tmp_path):
    # The node has GPUs but SLURM gave this job none: it must not take one behind the scheduler's back.
    clean_env.setenv("SLURM_JOB_ID", "10")
    locks = tmp_path / "locks"
    assert gpu.claim_gpu(lock_dir=locks, n_gpus=4) is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert not locks.exists()
