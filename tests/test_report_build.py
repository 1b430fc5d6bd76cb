"""`fast report`: tables and figures from a fake experiment with known numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fast.cli import main
from fast.metrics import METRIC_KEYS
from fast.report.build import comparison_documents
from fast.report.collect import load_reference, method_order
from fast.report.stats import COLUMNS, mdd_factor
from fast.report.tables import aggregate
from report_inputs import report_args

METHODS = ["fast", "fast-aias50", "fast-ddim50", "cutpaste"]
NFE = {"fast": 12, "fast-aias50": 52, "fast-ddim50": 50, "cutpaste": 0}
SECONDS = {"fast": 0.5, "fast-aias50": 2.0, "fast-ddim50": 1.9, "cutpaste": 0.01}


def miou(method, category, seed):
    """A deterministic 'result' so expected table values can be computed independently."""
    base = {"fast": 0.70, "fast-aias50": 0.74, "fast-ddim50": 0.72, "cutpaste": 0.60,
            "real-fewshot": 0.65, "no-anomalies": 0.48}[method]
    return base + (0.05 if category == "cable" else 0.0) + 0.01 * seed


def make_experiment(root, dataset="mvtec_ad", categories=("bottle", "cable"), seeds=(0, 1),
                    segmenters=("segformer",), methods=(*METHODS, "real-fewshot", "no-anomalies")):
    for cat in categories:
        for m in methods:
            if m not in ("real-fewshot", "no-anomalies"):
                syn = root / "synthetic" / dataset / cat / m
                syn.mkdir(parents=True, exist_ok=True)
                (syn / "timing.json").write_text(json.dumps(
                    {"wall_seconds": SECONDS[m] * 10, "images": 10, "images_per_s": 1 / SECONDS[m],
                     "seconds_per_image": SECONDS[m], "nfe": NFE[m], "device": "cpu", "method": m,
                     "dataset": dataset, "category": cat}))
            for seg in segmenters:
                for k in seeds:
                    d = root / "segmentation" / dataset / cat / m / seg / f"seed{k}"
                    d.mkdir(parents=True)
                    rec = {key: 0.9 for key in METRIC_KEYS}
                    rec.update(mIoU=miou(m, cat, k), mAcc=miou(m, cat, k) + 0.1, image_AUROC=None,
                               dataset=dataset, category=cat, method=m, segmenter=seg, seed=k)
                    (d / "metrics.json").write_text(json.dumps(rec))
    return root


def config(methods=METHODS, dataset="mvtec_ad", categories=("bottle", "cable"), seeds=(0, 1),
           segmenters=("segformer",)):
    """The config of the experiment make_experiment builds (`fast report` keeps the rows of the
    configured experiment from the files it is handed)."""
    return json.dumps({"experiment": "exp", "datasets": {dataset: {"categories": list(categories)}},
                       "segmentation": {"segmenters": list(segmenters), "seeds": list(seeds)},
                       "methods": list(methods)})


def test_report_tables_have_the_expected_numbers(tmp_path):
    results = make_experiment(tmp_path / "exp")
    assert main(["report", "--config", config(), "--results", str(results), *report_args(results)]) == 0
    tables = results / "tables"

    summary = pd.read_csv(tables / "summary.csv")
    assert list(summary.columns) == ["dataset", "category", "method", "segmenter", "seed", "metric", "value"]
    assert len(summary) == 2 * 6 * 1 * 2 * len(METRIC_KEYS)
    row = summary[(summary.category == "cable") & (summary.method == "fast") & (summary.seed == 1)
                  & (summary.metric == "mIoU")]
    assert row.value.item() == pytest.approx(0.76)
    assert summary[summary.metric == "image_AUROC"].value.isna().all()  # null -> NaN

    # Average of fast-aias50 over categories per seed: seed0 0.765, seed1 0.775 -> 77.0 ± 0.7 (%).
    js = json.loads((tables / "summary.json").read_text())
    assert js["mvtec_ad"]["segformer"]["fast-aias50"]["mIoU"] == pytest.approx(77.0)
    assert js["mvtec_ad"]["segformer"]["no-anomalies"]["mAcc"] == pytest.approx(61.0)

    md = (tables / "comparison.md").read_text()
    avg_line = next(line for line in md.splitlines() if line.startswith("| **average**"))
    std = np.std([0.765, 0.775], ddof=1) * 100
    assert f"**77.0 ± {std:.1f}**" in avg_line                 # best synthesis method in bold
    assert "68.0 ± 0.7" in avg_line and "**68.0" not in avg_line  # real-fewshot: shown, not ranked
    bottle = next(line for line in md.splitlines() if line.startswith("| bottle"))
    assert bottle.count("**") == 4                             # one bold mIoU, one bold mAcc
    # Header order: configured methods, then reference rows.
    header = next(line for line in md.splitlines() if line.startswith("| category | fast"))
    assert header.split("|")[2:-1] == [f" {m} " for m in [*METHODS, "real-fewshot", "no-anomalies"]]
    # The reported block: clearly labelled, the paper's bottle numbers for segformer.
    assert "REPORTED (not reproduced): mvtec_ad / segformer" in md
    assert "86.9 / 90.9" in md                                 # FAST bottle 86.86 / 90.9 (Table 1)
    assert "not produced by this run" in md
    assert "pixel_AUROC" in md and "AUPRO_0.3" in md

    tex = (tables / "comparison.tex").read_text()
    assert tex.count(r"\begin{tabular}") == 3 and r"\textbf{77.0 $\pm$" in tex and "fast-aias50" in tex
    assert "AUPRO\\_0.3" in tex

    eff = pd.read_csv(tables / "efficiency.csv")
    e = eff.set_index("method")
    assert e.loc["fast", "nfe"] == 12 and e.loc["fast-aias50", "seconds_per_image"] == pytest.approx(2.0)
    assert e.loc["cutpaste", "images_per_s"] == pytest.approx(100.0)
    assert e.loc["fast", "mIoU_mean"] == pytest.approx(73.0)
    assert np.isnan(e.loc["real-fewshot", "nfe"])

    figs = sorted(p.name for p in (results / "figures" / "metrics").glob("*.png"))
    assert figs == ["per_category_mAcc_mvtec_ad_segformer.png", "per_category_mIoU_mvtec_ad_segformer.png",
                    "quality_vs_nfe_mvtec_ad_segformer.png", "quality_vs_time_mvtec_ad_segformer.png"]
    assert all((results / "figures" / "metrics" / f).stat().st_size > 10_000 for f in figs)
    assert not list(tables.glob(".*tmp"))


def test_missing_methods_are_just_absent_and_no_reference_block(tmp_path):
    results = make_experiment(tmp_path / "exp", dataset="magnetic_tile", categories=("tile",),
                              seeds=(0,), segmenters=("unet",), methods=("cutpaste", "no-anomalies"))
    out = tmp_path / "out"
    assert main(["report", "--config", config(dataset="magnetic_tile", categories=("tile",), seeds=(0,),
                                              segmenters=("unet",)),
                 "--results", str(results), "--out", str(out), *report_args(results)]) == 0
    md = (out / "tables" / "comparison.md").read_text()
    assert "REPORTED" not in md and "fast-aias50" not in md
    assert "| tile | 60.0 / 70.0 | 48.0 / 58.0 |" in md          # one seed: mean only, no bold (1 method)
    assert not (out / "figures" / "metrics" / "quality_vs_nfe_magnetic_tile_unet.png").exists()  # NFE 0 only
    assert (out / "figures" / "metrics" / "quality_vs_time_magnetic_tile_unet.png").exists()


def test_report_without_results_of_the_experiment_is_a_clear_error(tmp_path, capsys):
    results = make_experiment(tmp_path / "exp", categories=("bottle",), seeds=(0,), methods=("fast",))
    # only files of another category: nothing belongs to the configured experiment
    assert main(["report", "--config", config(categories=("cable",)), "--results", str(results),
                 *report_args(results)]) == 2
    err = capsys.readouterr().err
    assert "no metrics.json given (--metrics) belongs to the configured experiment" in err
    assert len(err.strip().splitlines()) == 1 and not (results / "tables").exists()
    with pytest.raises(SystemExit):  # --metrics is required: argparse's usage error
        main(["report", "--config", config(), "--results", str(results)])


def test_aggregate_average_is_mean_over_seeds_of_category_means():
    long = pd.DataFrame([
        {"dataset": "d", "segmenter": "s", "method": "m", "metric": "mIoU", "category": c, "seed": k, "value": v}
        for c, k, v in [("a", 0, 0.5), ("b", 0, 0.7), ("a", 1, 0.6), ("b", 1, 1.0)]])
    agg = aggregate(long).set_index("category")
    assert agg.loc["average", "mean"] == pytest.approx(70.0)
    assert agg.loc["average", "std"] == pytest.approx(np.std([60.0, 80.0], ddof=1))
    assert agg.loc["b", "std"] == pytest.approx(np.std([70.0, 100.0], ddof=1))


def test_reference_file_and_method_order():
    ref = load_reference("fast/report/fast_paper_results.csv")
    assert not ref.duplicated(["dataset", "category", "segmenter", "method", "metric"]).any()
    assert ref[(ref.category == "average") & (ref.method == "fast-aias50") & (ref.metric == "mIoU")
               & (ref.segmenter == "segformer")].value.tolist() == [76.72]
    assert method_order(["no-anomalies", "zeta", "cutpaste", "fast"], ["fast", "cutpaste"]) == \
        ["fast", "cutpaste", "zeta", "no-anomalies"]


def test_undefined_metrics_do_not_break_the_report(tmp_path):
    """A method whose metrics are all undefined (null) shows '-' and is never bold."""
    results = make_experiment(tmp_path / "exp", categories=("bottle",), seeds=(0,), methods=("fast", "cutpaste"))
    for path in (results / "segmentation").glob("**/cutpaste/**/metrics.json"):
        rec = json.loads(path.read_text())
        path.write_text(json.dumps({**rec, **{k: None for k in METRIC_KEYS}}))
    assert main(["report", "--config", config(categories=("bottle",), seeds=(0,)), "--results", str(results),
                 *report_args(results)]) == 0
    md = (results / "tables" / "comparison.md").read_text()
    assert "| bottle | 70.0 / 80.0 | - / - |" in md
    eff = pd.read_csv(results / "tables" / "efficiency.csv").set_index("method")
    assert np.isnan(eff.loc["cutpaste", "mIoU_mean"]) and eff.loc["fast", "mIoU_mean"] == pytest.approx(70.0)
    assert json.loads((results / "tables" / "summary.json").read_text())["mvtec_ad"]["segformer"]["cutpaste"]["mIoU"] is None


def test_the_report_reads_the_files_it_is_handed_and_keeps_the_configured_experiment(tmp_path):
    """Handed every file of a results tree, the rows of a method, seed or category no longer
    configured stay out of every table; handed one file, the report reads exactly that file."""
    results = make_experiment(tmp_path / "exp", categories=("bottle", "cable"), seeds=(0, 1, 2))
    assert main(["report", "--config", config(methods=("fast", "cutpaste"), categories=("bottle",), seeds=(0, 1)),
                 "--results", str(results), *report_args(results)]) == 0
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert set(summary.method) == {"fast", "cutpaste", "real-fewshot", "no-anomalies"}
    assert set(summary.category) == {"bottle"} and set(summary.seed) == {0, 1}
    assert set(pd.read_csv(results / "tables" / "efficiency.csv").method) <= {"fast", "cutpaste", "real-fewshot",
                                                                             "no-anomalies"}
    one = results / "segmentation" / "mvtec_ad" / "cable" / "fast" / "segformer" / "seed2" / "metrics.json"
    assert main(["report", "--config", config(seeds=(0, 1, 2)), "--results", str(results),
                 "--out", str(tmp_path / "one"), "--metrics", str(one)]) == 0
    summary = pd.read_csv(tmp_path / "one" / "tables" / "summary.csv")
    assert set(zip(summary.method, summary.category, summary.seed)) == {("fast", "cable", 2)}


def test_every_differences_table_states_its_minimal_detectable_difference():
    """Each differences table of comparison.md / .tex (to the reference rows per metric, to the paste
    baseline, AIAS at equal NFE) carries exactly one MDD line, right under it."""
    methods = ["fast", "fast-dpmpp-nfe12", "defect-paste", "real-fewshot", "no-anomalies"]
    long = pd.DataFrame([{"dataset": "d", "category": "c", "method": m, "segmenter": "unet", "seed": k,
                          "metric": metric, "value": 0.5 + 0.01 * k}
                         for m in methods for k in (0, 1, 2) for metric in ("mIoU", "mAcc")])
    pairs = [(m, r, metric) for m in methods for r in ("no-anomalies", "real-fewshot") if m != r
             for metric in ("mIoU", "IoU_anomaly")]
    pairs += [("fast", "defect-paste", "mIoU"), ("fast-dpmpp-nfe12", "defect-paste", "mIoU"),
              ("fast", "fast-dpmpp-nfe12", "mIoU")]
    # s_d = 0.01 everywhere: MDD = (t_.975,2 + t_.80,2) * 0.01 / sqrt(3) = 5.363313 * 0.01 / 1.732051 = 3.1 points
    diffs = pd.DataFrame([dict(zip(COLUMNS, ["d", cat, m, "unet", r, metric, 0.02, 0.01, 0.03, True, 40, 3, 0.01,
                                             0.03, False, 0.01, mdd_factor(3) * 0.01]))
                          for m, r, metric in pairs for cat in ("c", "average")])
    md, tex = comparison_documents(long, load_reference(None), methods, "exp", diffs,
                                   frontier={"fast": ["fast-dpmpp-nfe12"]},
                                   entries={"fast": ("aias", 12), "fast-dpmpp-nfe12": ("dpmpp", 12)})
    sections = md.split("#### ")[1:]
    with_diffs = [t for t in sections if "difference to" in t.splitlines()[0] or "equal NFE" in t.splitlines()[0]]
    assert len(with_diffs) == 4       # mIoU, IoU_anomaly, against defect-paste, AIAS at equal NFE
    for section in with_diffs:
        assert section.count("Minimal detectable difference") == 1, section
        assert "3.1 over 3 seeds (pooled per-seed SD 1.00" in section and "~" in section   # +2.0 < 3.1
    assert all("Minimal detectable" not in t for t in sections if t not in with_diffs)
    assert tex.count("Minimal detectable difference") == 4 and "2.0 [+1.0, +3.0]*\\textasciitilde{}" in tex
