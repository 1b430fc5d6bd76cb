# fetch -> prepare (split manifest). Local copies: `datasets.<name>.root` or $FAST_DATA_DIR/<name>.
from pathlib import Path

from fast.cli import fetch_cli_args


rule fetch:
    output:
        directory(f"{DATA}/raw/{{dataset}}"),
    params:
        args=lambda w: fetch_cli_args(CFG["datasets"][w.dataset]),
        raw=lambda w, output: Path(output[0]).parent,  # OUT of `fast fetch`: writes OUT/<dataset>
        seed=CFG["seed"],
    log:
        f"{LOGS}/fetch/{{dataset}}.log",
    benchmark:
        f"{BENCH}/fetch/{{dataset}}.tsv"
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
        cpus_per_task=res("cpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        "fast fetch {wildcards.dataset} --out {params.raw} --seed {params.seed} {params.args} > {log} 2>&1"


rule prepare:
    input:
        f"{DATA}/raw/{{dataset}}",
    output:
        f"{DATA}/prepared/{{dataset}}/{{category}}/manifest.csv",
    params:
        cfg=lambda w: rule_config("prepare", w.dataset, w.category),
        prepared=lambda w, output: Path(output[0]).parents[2],  # <prepared>/<dataset>/<category>/manifest.csv
        resolution=CFG["resolution"],
        seed=CFG["seed"],
        options=lambda w: shlex.quote(json.dumps(CFG["datasets"][w.dataset].get("options", {}), sort_keys=True)),
    log:
        f"{LOGS}/prepare/{{dataset}}/{{category}}.log",
    benchmark:
        f"{BENCH}/prepare/{{dataset}}/{{category}}.tsv"
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
        cpus_per_task=res("cpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        "fast prepare {wildcards.dataset} --root {input} --out {params.prepared}"
        " --category {wildcards.category} --resolution {params.resolution} --seed {params.seed}"
        " --options {params.options} > {log} 2>&1"
