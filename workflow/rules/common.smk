# Target lists and per-rule config views computed from the validated config. No logic beyond that;
# everything else lives in the `fast` package.
import json
import shlex
from pathlib import Path

from fast.config import read_config_file, validate_config
from fast.methods import BASE_GENERATOR, BASE_OF, GENERATOR_OF, REFERENCE_ROWS, REGISTRY

# snakemake's own YAML loader keeps the last of a key given twice: each config file is read again
# by the strict one (a duplicate key is refused, naming it and its lines)
for _configfile in workflow.configfiles:
    read_config_file(Path(_configfile))
# The Snakefile validated `config` with the same schema; this copy also has the defaults filled.
CFG = validate_config(config, "snakemake config")
EXP = CFG["experiment"]
DATA = CFG["paths"]["data"]
RESULTS = f"{CFG['paths']['results']}/{EXP}"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
DATASETS = list(CFG["datasets"])
METHODS = list(CFG["methods"])
SEG = CFG["segmentation"]
# Every segmenter seed trains on a synthetic set of its own (one synthesize job per seed), so that
# the seed spread covers the synthesis draw too; false: one set per method that all seeds share.
PER_SEED = CFG["synthesis"]["per_seed"]

wildcard_constraints:
    dataset="|".join(DATASETS),
    category="[A-Za-z0-9_.-]+",
    method="[A-Za-z0-9_.-]+",
    generator="[A-Za-z0-9_.-]+",
    segmenter="[A-Za-z0-9_.-]+",
    seed=r"\d+",


def pairs():
    """(dataset, category) pairs of the experiment."""
    return [(d, c) for d in DATASETS for c in CFG["datasets"][d]["categories"]]


def generators():
    """Trained generators needed by the configured methods (each trained once per category), with
    the shared base model they start from."""
    needed = {GENERATOR_OF[m] for m in METHODS if GENERATOR_OF[m]}
    return sorted(needed | {BASE_OF[g] for g in needed if BASE_OF[g]})


def generator_inputs(wildcards):
    """Inputs of `train_generator`: the prepared manifest and the base model it starts from."""
    base = BASE_OF[wildcards.generator]
    return {"manifest": manifest(wildcards.dataset, wildcards.category),
            "base": f"{generator_dir(wildcards.dataset, wildcards.category, base)}/model.safetensors"}


def seg_rows():
    """Rows of the downstream tables: every method plus the reference rows."""
    return METHODS + list(SEG["reference_rows"])


# Sections of the config each rule depends on; a rule re-runs when (and only when) its view
# changes (Snakemake's params rerun trigger), e.g. changing aias.steps re-synthesises but does
# not retrain the generators.
RULE_SECTIONS = {
    "prepare": ["resolution", "seed"],
    "train_generator": ["resolution", "seed", "device", "diffusion"],
    "synthesize": ["resolution", "seed", "device", "synthesis"],
    "train_segmenter": ["resolution", "device", "segmentation"],
    "evaluate": ["resolution", "device"],
    "fidelity": ["resolution"],
    "report": ["paths", "report", "segmentation", "methods", "synthesis", "aias"],
}
# The schema needs a method list; views of jobs that belong to no synthesis method (prepare, the
# shared base model, the reference rows' segmenters) carry this fixed one, so that their params do not
# change when the experiment's method list does.
PLACEHOLDER_METHOD = next(iter(REGISTRY))
# Segmenter settings that select jobs rather than configure one: a job's view holds its own
# segmenter and seed instead, so adding a seed or a segmenter adds jobs and reruns none.
SEG_JOB_KEYS = ("segmenters", "seeds", "reference_rows")
# Likewise synthesis.per_seed selects the synthesize jobs (one per seed or one shared); a per-seed
# job's view holds its own seed instead (as segmentation.seeds), and a shared set's view stays what
# it was before the key existed, so switching per_seed off reruns no shared synthesis.
SYNTH_JOB_KEYS = ("per_seed",)
# segmentation.keep_weights decides whether the workflow keeps a segmenter's weights after its
# evaluation (segment.smk, temp()); no job reads it.
SEG_WORKFLOW_KEYS = ("keep_weights",)
# The rules that run networks read `precision`. A view holds it only when it is not the default
# (auto), and synthesis.batch_size only when it is set and the method samples a generator, so that
# the views (the params) of every job of a config without them are what they were before the keys
# existed: adding them reran no finished job.
PRECISION_RULES = ("train_generator", "synthesize", "train_segmenter", "evaluate")


def rule_config(rule_name, dataset=None, category=None, method=None, segmenter=None, seed=None):
    """A minimal valid config (JSON, shell-quoted) holding exactly what one job of ``rule_name``
    reads: its dataset with its one category, its method, its segmenter and seed, and the config
    sections of RULE_SECTIONS. The report's view holds the whole experiment."""
    view = {"experiment": EXP}
    if rule_name == "report":
        view["methods"] = METHODS
    elif method in REGISTRY:
        view["methods"] = [method]
    elif method in BASE_OF:
        # a generator that is no synthesis method (the shared base): a method sampling it
        view["methods"] = [m for m in REGISTRY if GENERATOR_OF[m] == method][:1] or [PLACEHOLDER_METHOD]
    else:  # a job of no method (prepare) or a reference row
        view["methods"] = [PLACEHOLDER_METHOD]
    datasets = [dataset] if dataset else DATASETS
    view["datasets"] = {d: ({**CFG["datasets"][d], "categories": [category]} if category else CFG["datasets"][d])
                        for d in datasets}
    for key in RULE_SECTIONS[rule_name]:
        view[key] = CFG[key]
    if rule_name == "report":   # no table reads how the sets were batched or whether weights are kept
        view["synthesis"] = {k: v for k, v in CFG["synthesis"].items() if k != "batch_size"}
        view["segmentation"] = {k: v for k, v in SEG.items() if k not in SEG_WORKFLOW_KEYS}
    if rule_name == "synthesize":
        view["synthesis"] = {k: v for k, v in CFG["synthesis"].items() if k not in SYNTH_JOB_KEYS}
        if CFG["synthesis"]["batch_size"] is None or not GENERATOR_OF.get(method):
            del view["synthesis"]["batch_size"]
        if seed is not None:
            view["segmentation"] = {"seeds": [int(seed)]}
    if rule_name == "synthesize" and method is not None and GENERATOR_OF.get(method):
        # only methods that sample a trained generator read the model and sampler settings
        view["diffusion"], view["aias"] = CFG["diffusion"], CFG["aias"]
    if rule_name == "train_segmenter" and segmenter is not None:
        view["segmentation"] = {**{k: v for k, v in SEG.items() if k not in SEG_JOB_KEYS + SEG_WORKFLOW_KEYS},
                                "segmenters": [segmenter], "seeds": [int(seed)], "reference_rows": []}
    if (rule_name in PRECISION_RULES and CFG["precision"] != "auto"
            and (rule_name != "synthesize" or GENERATOR_OF.get(method))):
        view["precision"] = CFG["precision"]
    if method is not None and method in CFG["method_options"]:
        view["method_options"] = {method: CFG["method_options"][method]}
    if rule_name == "train_generator" and method is not None:
        view["method_options"] = {m: o for m, o in CFG["method_options"].items()
                                  if GENERATOR_OF.get(m) == method or m == method}
    return shlex.quote(json.dumps(view, sort_keys=True))


def res(kind, key):
    return CFG["resources"][kind][key]


def manifest(dataset, category):
    return f"{DATA}/prepared/{dataset}/{category}/manifest.csv"


def generator_dir(dataset, category, generator):
    return f"{RESULTS}/generators/{dataset}/{category}/{generator}"


def synthetic_dir(dataset, category, method, seed=None):
    """The synthetic set segmenter seed ``seed`` trains on: its own (synthesis.per_seed) or the
    method's one shared set."""
    shared = f"{RESULTS}/synthetic/{dataset}/{category}/{method}"
    return f"{shared}/seed{seed}" if PER_SEED else shared


def synthetic_dirs(dataset, category, method):
    """Every synthetic set of a method in a category: one per segmenter seed, or the shared one."""
    return list(dict.fromkeys(synthetic_dir(dataset, category, method, k) for k in SEG["seeds"]))


def seg_dir(dataset, category, method, segmenter, seed):
    return f"{RESULTS}/segmentation/{dataset}/{category}/{method}/{segmenter}/seed{seed}"


def prepared_targets():
    return [manifest(d, c) for d, c in pairs()]


def generator_targets():
    return [f"{generator_dir(d, c, g)}/model.safetensors" for d, c in pairs() for g in generators()]


def synthetic_manifests(dataset, category, method):
    return [f"{s}/manifest.csv" for s in synthetic_dirs(dataset, category, method)]


def synthetic_targets():
    return [f"{s}/manifest.csv" for d, c in pairs() for m in METHODS for s in synthetic_dirs(d, c, m)]


def segmentation_targets():
    return [f"{seg_dir(d, c, m, s, k)}/metrics.json"
            for d, c in pairs() for m in seg_rows() for s in SEG["segmenters"] for k in SEG["seeds"]]


def report_targets():
    out = [f"{RESULTS}/tables/{name}" for name in
           ("summary.csv", "comparison.md", "comparison.tex", "efficiency.csv", "summary.json")]
    if CFG["report"]["sample_grid"]:
        out.append(f"{RESULTS}/figures/sample_grid.png")
    return out


def all_targets():
    return report_targets()


def synth_inputs(wildcards):
    """Inputs of `synthesize`: the prepared manifest, plus the trained generator if the method has one."""
    inputs = {"manifest": manifest(wildcards.dataset, wildcards.category)}
    gen = GENERATOR_OF.get(wildcards.method)
    if gen:
        inputs["generator"] = f"{generator_dir(wildcards.dataset, wildcards.category, gen)}/model.safetensors"
    return inputs
