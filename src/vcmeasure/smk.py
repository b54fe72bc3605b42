"""Glue for ``workflow/scripts``: send output to the rule's log and turn failures into one clear line.

Scripts stay thin adapters::

    from vcmeasure.smk import rule_context
    with rule_context(snakemake):
        do_the_work(snakemake.input[0], snakemake.output[0], **snakemake.params)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback

from .errors import VCMeasureError


def prepare_job_environment(basedir: str) -> None:
    """Environment every job inherits: ``src/`` of this checkout on PYTHONPATH (conda envs built from
    envs/vcmeasure.yaml do not install vcmeasure), TensorFlow's C++ logging quiet, matplotlib headless."""
    src = os.path.abspath(os.path.join(basedir, "src"))
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *paths])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")


@contextlib.contextmanager
def rule_context(smk):
    """Redirect stdout/stderr (Keras progress too) to ``log[0]``; exit 1 with one line on failure."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    log_path = smk.log[0] if len(smk.log) else None
    fh = open(log_path, "w", buffering=1) if log_path else None  # noqa: SIM115 - lives for the job
    # keep a handle on the console's stderr before fd 2 is pointed at the log
    real_stderr = os.fdopen(os.dup(2), "w", buffering=1) if fh else sys.stderr
    if fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        sys.stdout = sys.stderr = fh
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=fh or sys.stderr, force=True)
    try:
        yield smk
    except VCMeasureError as err:
        line = f"{smk.rule}: error: {err}"
        print(line, file=fh or sys.stderr)
        print(line, file=real_stderr)
        sys.exit(1)
    except Exception as err:  # unexpected: full traceback to the log, one line to the console
        traceback.print_exc()
        print(f"{smk.rule}: unexpected {type(err).__name__}: {err} (traceback in {log_path})", file=real_stderr)
        sys.exit(1)
    finally:
        if fh:
            fh.flush()
