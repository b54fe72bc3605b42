# Helpers shared by the rules: config validation, paths, final targets. No lambdas in rules; input
# functions live here.
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

try:
    validate(config, schema="../schemas/config.schema.yaml", set_default=True)
except WorkflowError as err:
    # One clear line naming the offending key, before any job runs.
    from vcmeasure.config import describe_validation_error

    raise WorkflowError(describe_validation_error(err)) from None

# Scripts import vcmeasure from this checkout, also inside conda envs that do not install it.
_SRC = os.path.abspath(os.path.join(workflow.basedir, "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (_SRC, os.environ.get("PYTHONPATH", "")) if p
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

ENV = "../../envs/vcmeasure.yaml"
DATASET = config["data"]["name"]
DATASET_DIR = f"data/raw/{DATASET}"
SEG_ARCHS = config["segmentation"]["architectures"]
REG_MODELS = config["regression"]["models"]


def train_resources():
    """Threads / memory / runtime shared by the GPU training rules."""
    res = config["resources"]
    return res["train_threads"], res["train_mem_mb"], res["train_runtime_min"]


def all_targets():
    """Everything `rule all` builds: the paper's tables and figures, the summary and the report inputs."""
    targets = [
        "results/figures/synthetic_examples.png",
        "results/tables/synthetic_cohort.md",
    ]
    if config["data"]["source"] != "synthetic":
        targets = []
    targets += [
        "results/preprocessed/transforms.csv",
        "results/split/split.csv",
        "results/split/summary.md",
    ]
    return targets
