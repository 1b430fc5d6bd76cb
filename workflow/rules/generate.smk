# train generator (per dataset x category x generator) -> synthesize (per method, and per
# segmenter seed with synthesis.per_seed; the generators are shared by every seed).
# GPU rules: resources come from config `resources.gpu` so any site profile can place them.


TRAIN_CMD = (
    "OMP_NUM_THREADS={threads} fast train --config {params.cfg} --dataset {wildcards.dataset}"
    " --category {wildcards.category} --generator {params.generator}"
    " --prepared {params.prepared} {params.base} --out {params.out} > {log} 2>&1"
)


# The shared base model has its own rule: a rule whose jobs depend on jobs of the same rule
# (fast -> base) stalls `snakemake --until train_generator`, which DVC's train stage runs.
rule train_base:
    # heads the longest chain (base -> own part -> synthesis -> segmenters): start it first
    priority: 30
    input:
        manifest=lambda w: manifest(w.dataset, w.category),
    output:
        model=f"{RESULTS}/generators/{{dataset}}/{{category}}/{BASE_GENERATOR}/model.safetensors",
        config=f"{RESULTS}/generators/{{dataset}}/{{category}}/{BASE_GENERATOR}/config.json",
    params:
        cfg=lambda w: rule_config("train_generator", w.dataset, w.category, BASE_GENERATOR),
        out=lambda w: generator_dir(w.dataset, w.category, BASE_GENERATOR),
        prepared=f"{DATA}/prepared",
        generator=BASE_GENERATOR,
        base="",
    log:
        f"{LOGS}/train_generator/{{dataset}}/{{category}}/{BASE_GENERATOR}.log",
    benchmark:
        f"{BENCH}/train_generator/{{dataset}}/{{category}}/{BASE_GENERATOR}.tsv"
    threads: res("gpu", "cpus_per_task")
    resources:
        gpu=res("gpu", "gpu"),
        mem_mb=res("gpu", "mem_mb"),
        runtime=res("gpu", "runtime"),
        cpus_per_task=res("gpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        TRAIN_CMD


rule train_generator:
    # each method's own part on top of the base model (FARM, STAGE adapters, SARD D)
    priority: 20
    input:
        unpack(generator_inputs),
    output:
        model=f"{RESULTS}/generators/{{dataset}}/{{category}}/{{generator}}/model.safetensors",
        config=f"{RESULTS}/generators/{{dataset}}/{{category}}/{{generator}}/config.json",
    wildcard_constraints:
        generator="|".join(g for g in BASE_OF if BASE_OF[g]),
    params:
        cfg=lambda w: rule_config("train_generator", w.dataset, w.category, w.generator),
        out=lambda w: generator_dir(w.dataset, w.category, w.generator),
        prepared=f"{DATA}/prepared",
        generator=lambda w: w.generator,
        base=lambda w, input: f"--base-dir {shlex.quote(os.path.dirname(input.base))}",
    log:
        f"{LOGS}/train_generator/{{dataset}}/{{category}}/{{generator}}.log",
    benchmark:
        f"{BENCH}/train_generator/{{dataset}}/{{category}}/{{generator}}.tsv"
    threads: res("gpu", "cpus_per_task")
    resources:
        gpu=res("gpu", "gpu"),
        mem_mb=res("gpu", "mem_mb"),
        runtime=res("gpu", "runtime"),
        cpus_per_task=res("gpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        TRAIN_CMD


# One synthetic set per segmenter seed (synthesis.per_seed: .../<method>/seed<k>/, drawn with
# --replicate k) or one per method that every seed shares (.../<method>/). The shared form keeps
# its paths, log names and command word for word, so its existing results stay up to date.
SYNTH_SET = "{dataset}/{category}/{method}"
SYNTH_JOB = f"{SYNTH_SET}/seed{{seed}}" if PER_SEED else SYNTH_SET
SYNTH_OUT = f"{RESULTS}/synthetic/{SYNTH_JOB}"
SYNTH_CMD = (
    "OMP_NUM_THREADS={threads} fast synthesize --config {params.cfg} --dataset {wildcards.dataset}"
    " --category {wildcards.category} --method {wildcards.method} --prepared {params.prepared}"
    " {params.generator} --out {params.out}"
    + (" --replicate {wildcards.seed}" if PER_SEED else "")
    + " > {log} 2>&1"
)


rule synthesize:
    priority: 10
    input:
        unpack(synth_inputs),
    output:
        manifest=f"{SYNTH_OUT}/manifest.csv",
        timing=f"{SYNTH_OUT}/timing.json",
    params:
        cfg=lambda w: rule_config("synthesize", w.dataset, w.category, w.method, seed=w.get("seed")),
        out=lambda w: synthetic_dir(w.dataset, w.category, w.method, w.get("seed")),
        generator=lambda w, input: (
            f"--generator-dir {shlex.quote(os.path.dirname(input.generator))}" if "generator" in input.keys() else ""
        ),
        prepared=f"{DATA}/prepared",
    log:
        f"{LOGS}/synthesize/{SYNTH_JOB}.log",
    benchmark:
        f"{BENCH}/synthesize/{SYNTH_JOB}.tsv"
    threads: res("gpu", "cpus_per_task")
    resources:
        gpu=lambda w: res("gpu", "gpu") if GENERATOR_OF.get(w.method) else 0,
        mem_mb=res("gpu", "mem_mb"),
        runtime=res("gpu", "runtime"),
        cpus_per_task=res("gpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        SYNTH_CMD
