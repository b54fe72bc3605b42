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
