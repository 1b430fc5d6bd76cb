# train segmenter -> evaluate (per dataset x category x method x segmenter x seed).
# Synthesis methods train on their synthetic directory (with synthesis.per_seed, the one drawn for
# the job's own seed); the reference rows (real-fewshot, no-anomalies) on the prepared data only.
# Each job's config view holds its own category, method, segmenter and seed only (common.smk,
# rule_config), so adding a seed, a method, a segmenter or a category adds jobs and reruns none of
# the existing ones.
# The weights (model.safetensors: unet 57 MB, deeplabv3plus 49 MB, segformer 15 MB) are read by
# `evaluate` only: they are temp() outputs, deleted once evaluated, unless segmentation.keep_weights
# (an evaluate that must rerun then retrains its segmenter first).

SEG_OUT = f"{RESULTS}/segmentation/{{dataset}}/{{category}}/{{method}}/{{segmenter}}/seed{{seed}}"
SEG_LOG = "{dataset}/{category}/{method}/{segmenter}/seed{seed}"
SEG_WEIGHTS = f"{SEG_OUT}/model.safetensors"


rule train_segmenter:
    input:
        manifest=lambda w: manifest(w.dataset, w.category),
        synthetic=lambda w: (
            []
            if w.method in REFERENCE_ROWS
            else f"{synthetic_dir(w.dataset, w.category, w.method, w.seed)}/manifest.csv"
        ),
    output:
        model=SEG_WEIGHTS if SEG["keep_weights"] else temp(SEG_WEIGHTS),
        config=f"{SEG_OUT}/train_config.json",
    params:
        cfg=lambda w: rule_config("train_segmenter", w.dataset, w.category, w.method, w.segmenter, w.seed),
        prepared=f"{DATA}/prepared",
        synthetic=lambda w, input: (
            f"--synthetic {shlex.quote(os.path.dirname(input.synthetic))}"
            if input.synthetic
            else ""
        ),
    log:
        f"{LOGS}/train_segmenter/{SEG_LOG}.log",
    benchmark:
        f"{BENCH}/train_segmenter/{SEG_LOG}.tsv"
    threads: res("gpu", "cpus_per_task")
    resources:
        gpu=res("gpu", "gpu"),
        mem_mb=res("gpu", "mem_mb"),
        runtime=res("gpu", "runtime"),
        cpus_per_task=res("gpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        "OMP_NUM_THREADS={threads} fast train-segmenter --config {params.cfg} --dataset {wildcards.dataset}"
        " --category {wildcards.category} --method {wildcards.method} --segmenter {wildcards.segmenter}"
        " --seed {wildcards.seed} --prepared {params.prepared} {params.synthetic}"
        " --out $(dirname {output.model}) > {log} 2>&1"


rule evaluate:
    input:
        manifest=lambda w: manifest(w.dataset, w.category),
        model=SEG_WEIGHTS,
        config=f"{SEG_OUT}/train_config.json",
    output:
        metrics=f"{SEG_OUT}/metrics.json",
        per_image=f"{SEG_OUT}/per_image.csv",
    params:
        cfg=lambda w: rule_config("evaluate", w.dataset, w.category, w.method),
        prepared=f"{DATA}/prepared",
    log:
        f"{LOGS}/evaluate/{SEG_LOG}.log",
    benchmark:
        f"{BENCH}/evaluate/{SEG_LOG}.tsv"
    threads: res("cpu", "cpus_per_task")
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
        cpus_per_task=res("cpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        "OMP_NUM_THREADS={threads} fast evaluate --config {params.cfg} --dataset {wildcards.dataset}"
        " --category {wildcards.category} --prepared {params.prepared}"
        " --model $(dirname {input.model}) --out $(dirname {output.metrics}) > {log} 2>&1"
