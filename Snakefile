# FAST benchmark: fetch -> prepare -> train generators -> synthesize -> train segmenters ->
# evaluate -> report. Every rule is a thin call of one `fast` subcommand.
#   snakemake --cores all                      (embedded default: synthetic dataset, CPU)
#   snakemake --cores all --configfile config/magnetic_tile.yaml
#   snakemake --profile slurm all              (GPU cluster)
from snakemake.utils import min_version, validate

min_version("9.0")  # = the lower bound of snakemake in pyproject.toml (tests/test_catalog.py)


# The embedded default, unless the user names an experiment with --configfile: a named config
# replaces the default rather than being merged into it (else its datasets would add up).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



validate(config, schema="workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        all_targets(),
    default_target: True
