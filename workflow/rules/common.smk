# Helpers shared by the rules: config validation, paths, final targets. No lambdas in rules; input
# functions live here.

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

try:
    validate(config, schema="../schemas/config.schema.yaml", set_default=True)
except WorkflowError as err:
    # One clear line naming the offending key, before any job runs.
    from vcmeasure.config import describe_validation_error

    raise WorkflowError(describe_validation_error(err)) from None

from vcmeasure.smk import prepare_job_environment

# Jobs import vcmeasure from this checkout (also in conda envs that do not install it), quietly, headless.
prepare_job_environment(workflow.basedir)

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
    """Targets of the default rule (all); the paper's tables and figures (DESIGN §6), the summary and metrics."""
    targets = []
    if config["data"]["source"] == "synthetic":
        targets += ["results/figures/synthetic_examples.png", "results/tables/synthetic_cohort.md"]
    targets += [
        "results/split/summary.md",
        "results/tables/table1_segmentation.md",
        "results/figures/fig6_segmentation.png",
        "results/figures/fig3_triplets.png",
        "results/figures/fig5_vertices.png",
        "results/tables/table2_regression.md",
        "results/tables/table2_regression_true.md",
        "results/stats/agreement.json",
        "results/figures/fig7_agreement.png",
        "results/summary.md",
        "results/metrics.json",
    ]
    targets += expand("results/segmentation/{arch}/learning_curve.png", arch=SEG_ARCHS)
    targets += expand("results/regression/{model}/learning_curve.png", model=REG_MODELS)
    return targets


# Input functions of measure.smk (export_models, measure).
def selected_segmentation_model(wildcards):
    """results/segmentation/<arch>/model.keras of the architecture written by checkpoint select_architecture."""
    return f"results/segmentation/{selected_architecture()}/model.keras"


def measure_input_folder(wildcards):
    """The folder of new radiographs (config measure.input); a clear error when it is not set."""
    folder = config["measure"]["input"]
    if not folder:
        raise WorkflowError("config measure.input: empty; name a folder of radiographs, e.g. "
                            "--config 'measure={input: /path/to/images}'")
    return folder


# Input functions of triplets.smk and baseline.smk (rules extract_triplets, figure3, baseline, figure5).
def selected_architecture():
    """The architecture written by checkpoint select_architecture (its file's first word)."""
    with open(checkpoints.select_architecture.get().output.selected) as fh:
        return fh.read().split()[0]


def masks_of_source(source):
    """Label maps of a triplet source: ground truth, or the selected architecture's predictions."""
    if source == "groundtruth":
        return "results/preprocessed/masks"
    return f"results/segmentation/{selected_architecture()}/masks"


def triplet_masks(wildcards):
    """Input function of extract_triplets: the masks of its {source}."""
    return masks_of_source(wildcards.source)


def eval_triplet_masks(wildcards):
    """Label maps of config triplets.eval_source (the windows scored in Table 2)."""
    return masks_of_source(config["triplets"]["eval_source"])
