# generator fidelity (per dataset x category x method); aggregate tables, figures, efficiency,
# bootstrap differences; sample grid. `snakemake --report` builds report.html.
import re


# Fidelity pools a method's sets of every segmenter seed (synthesis.per_seed) into one sample, so
# that fidelity.csv keeps one row per method and type: this method's defects against the real ones,
# not one seed's draw. Adding a seed therefore reruns it, as it does the report.
rule fidelity:
    input:
        synthetic=lambda w: synthetic_manifests(w.dataset, w.category, w.method),
        manifest=lambda w: manifest(w.dataset, w.category),
    output:
        f"{RESULTS}/fidelity/{{dataset}}/{{category}}/{{method}}.csv",
    wildcard_constraints:
        # configured synthesis methods only (the reference rows have no synthetic data)
        method="|".join(re.escape(m) for m in METHODS),
    params:
        cfg=lambda w: rule_config("fidelity", w.dataset, w.category, w.method),
        synthetic=lambda w: " ".join(shlex.quote(s) for s in synthetic_dirs(w.dataset, w.category, w.method)),
        prepared=f"{DATA}/prepared",
    log:
        f"{LOGS}/fidelity/{{dataset}}/{{category}}/{{method}}.log",
    benchmark:
        f"{BENCH}/fidelity/{{dataset}}/{{category}}/{{method}}.tsv"
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
        cpus_per_task=res("cpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        "fast fidelity --config {params.cfg} --prepared {params.prepared} --dataset {wildcards.dataset}"
        " --category {wildcards.category} --method {wildcards.method} --synthetic {params.synthetic}"
        " --out {output} > {log} 2>&1"


rule report:
    input:
        metrics=segmentation_targets(),
        per_image=[p.replace("metrics.json", "per_image.csv") for p in segmentation_targets()],
        # one timing.json per synthetic set (per seed with synthesis.per_seed); each names its
        # dataset, category, method and seed, and the efficiency table averages over them
        timing=[f"{s}/timing.json" for d, c in pairs() for m in METHODS for s in synthetic_dirs(d, c, m)],
        fidelity=[f"{RESULTS}/fidelity/{d}/{c}/{m}.csv" for d, c in pairs() for m in METHODS],
        reference=CFG["paths"]["reference"],
    output:
        summary=report(f"{RESULTS}/tables/summary.csv", caption="../report/summary.rst", category="Tables"),
        comparison=report(f"{RESULTS}/tables/comparison.md", caption="../report/comparison.rst", category="Tables"),
        tex=report(f"{RESULTS}/tables/comparison.tex", caption="../report/comparison_tex.rst", category="Tables"),
        efficiency=report(f"{RESULTS}/tables/efficiency.csv", caption="../report/efficiency.rst", category="Tables"),
        # the DVC metrics file (category averages as JSON): data for tools, not a table for the report
        summary_json=f"{RESULTS}/tables/summary.json",
        differences=report(f"{RESULTS}/tables/differences.csv", caption="../report/differences.rst", category="Tables"),
        per_type=report(f"{RESULTS}/tables/per_type.csv", caption="../report/per_type.rst", category="Tables"),
        fidelity=report(f"{RESULTS}/tables/fidelity.csv", caption="../report/fidelity.rst", category="Tables"),
        figures=report(directory(f"{RESULTS}/figures/metrics"), patterns=["{name}.png"],
                       caption="../report/figures.rst", category="Figures"),
    params:
        cfg=lambda w: rule_config("report"),
        results=lambda w, output: os.path.dirname(os.path.dirname(output.summary)),
    log:
        f"{LOGS}/report/report.log",
    benchmark:
        f"{BENCH}/report/report.tsv"
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
        cpus_per_task=res("cpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        # the report reads exactly its declared inputs (no glob of results/: a removed method's
        # stale files never reach a table)
        "fast report --config {params.cfg} --results {params.results} --reference {input.reference}"
        " --metrics {input.metrics:q} --timings {input.timing:q} --fidelity {input.fidelity:q} > {log} 2>&1"


rule sample_grid:
    input:
        # illustrative samples: the first segmenter seed's set (with synthesis.per_seed), so that
        # adding a seed does not redraw the figure
        synthetic=[f"{synthetic_dir(d, c, m, SEG['seeds'][0])}/manifest.csv" for d, c in pairs() for m in METHODS],
        prepared=prepared_targets(),
    output:
        report(f"{RESULTS}/figures/sample_grid.png", caption="../report/sample_grid.rst", category="Figures"),
    params:
        dirs=lambda w, input: " ".join(shlex.quote(os.path.dirname(p)) for p in input.synthetic),
        # <prepared>/<dataset>/<category>/manifest.csv -> <prepared>
        prepared=lambda w, input: os.path.dirname(os.path.dirname(os.path.dirname(input.prepared[0]))),
    log:
        f"{LOGS}/report/sample_grid.log",
    benchmark:
        f"{BENCH}/report/sample_grid.tsv"
    resources:
        mem_mb=res("cpu", "mem_mb"),
        runtime=res("cpu", "runtime"),
        cpus_per_task=res("cpu", "cpus_per_task"),
    conda:
        "../envs/fast.yaml"
    shell:
        "fast grid --synthetic {params.dirs} --prepared {params.prepared} --out {output} > {log} 2>&1"
