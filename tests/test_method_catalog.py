"""The method catalog (fast.catalog) is the one place a method is described: its name is spelt in the
package only there and in its own module, the registry's tables are views of it, and a method added
the documented way (one module + one record) is seen everywhere: built, synthesised, listed by
`fast methods`, accepted and its options checked by the config, grouped by the report."""

from __future__ import annotations

import ast
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from fast import catalog
from fast.errors import FastError

PACKAGE = Path(__file__).resolve().parents[1] / "fast"

# Files where a catalog name is a string literal for another reason than naming the method, and why
OTHER_MEANINGS = {
    catalog.FAST: {
        "fast/cli.py": "the program's name (argparse prog)",
    },
}


@lru_cache(maxsize=1)
def _literal_files() -> dict[str, set[str]]:
    """{string constant: files of the package (relative to the repository) that spell it whole}."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE.parent))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.setdefault(node.value, set()).add(rel)
    return found


def _module_file(record: catalog.Method) -> str:
    return record.factory.split(":")[0].replace(".", "/") + ".py"


@pytest.mark.parametrize("name", [*catalog.names(), *catalog.REFERENCE_ROWS])
def test_a_method_name_is_spelt_in_the_catalog_and_its_module_only(name):
    files = _literal_files().get(name, set()) - set(OTHER_MEANINGS.get(name, {}))
    record = catalog.get(name)
    allowed = {"fast/catalog.py"} | ({_module_file(record)} if record else set())
    assert "fast/catalog.py" in files or record is not None and record.group == "frontier"  # sweep names are built
    assert files <= allowed and len(files) <= 2, f"{name!r} spelt in {sorted(files - allowed)}: use fast.catalog"


def test_the_literal_check_sees_the_package():
    found = _literal_files()
    assert len({f for fs in found.values() for f in fs}) > 30
    assert found["stage"] == {"fast/catalog.py", "fast/methods/stage.py"}
    for name, files in OTHER_MEANINGS.items():
        assert set(files) <= found[name], "an exception no file needs any more: drop it"


def test_the_registry_is_a_view_of_the_catalog():
    from fast import config
    from fast import methods as registry

    assert list(registry.REGISTRY) == list(catalog.names())
    assert list(registry.BASE_OF) == [catalog.BASE, catalog.FAST, "stage", "sard"]
    assert set(registry.SWEEP) == {catalog.sweep_name(s, n) for s in catalog.SWEEP_SAMPLERS for n in catalog.SWEEP_NFE}
    assert registry.SAMPLER_OF[catalog.NOFARM] == "aias (no FARM)" and "anomalydiffusion" not in registry.SAMPLER_OF
    assert config.AIAS_CONFIG_STEPS_METHODS == (catalog.FAST, catalog.NOFARM, "fast-fusionwindow")
    assert set(config.DIFFUSION_METHODS) == {m for m, g in registry.GENERATOR_OF.items() if g}
    assert {m.group for m in catalog.methods()} == set(catalog.GROUPS)
    assert catalog.BASELINE in catalog.names() and set(catalog.BENCH) <= set(catalog.names())


TOY = "toy-square"
TOY_MODULE = '''
from fast.methods.base import NUMBER, SynthesisMethod


class ToySquare(SynthesisMethod):
    name = "toy-square"
    OPTIONS = {"level": NUMBER}

    def synthesize(self, requests, seed):
        for req in requests:
            out = req.background.copy()
            out[req.mask > 0] = int(self.options.get("level", 255))
            yield out, req.mask.copy(), {"nfe": 0}


def build(cfg, name):
    return ToySquare(cfg, name)
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The documented way: one module (on sys.path) + one catalog record."""
    (tmp_path / "toy_square_method.py").write_text(textwrap.dedent(TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    record = catalog.Method(TOY, "toy_square_method:build", "toy: the mask filled with one grey level",
                            "not in the papers: a test's method")
    catalog.register(record)
    yield record
    catalog.unregister(TOY)
    sys.modules.pop("toy_square_method", None)


def _config(**extra):
    return {"experiment": "toy", "datasets": {"synthetic": {"categories": ["x"]}}, "methods": [TOY], **extra}


def test_a_registered_method_is_seen_everywhere(toy, capsys):
    from fast import methods as registry
    from fast.cli import main
    from fast.config import is_diffusion_method, load_config
    from fast.methods import SynthesisRequest, build_method
    from fast.report.collect import method_order
    from fast.report.stats import baseline_pairs, frontier_entries

    # the registry and the config
    assert registry.REGISTRY[TOY] == "toy_square_method:build" and registry.GENERATOR_OF[TOY] is None
    cfg = load_config(_config(method_options={TOY: {"level": 7}}))
    assert cfg["methods"] == [TOY] and not is_diffusion_method(TOY)
    with pytest.raises(FastError, match=f"method_options.{TOY}.nope: method '{TOY}' has no option 'nope'"):
        load_config(_config(method_options={TOY: {"nope": 1}}))

    # built from its module, described by its record, synthesises a pair
    method = build_method(TOY, cfg)
    assert method.description == toy.description and method.departures == toy.departures
    bg = np.full((16, 16, 3), 100, np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:10] = 1
    [(image, label, meta)] = method.synthesize([SynthesisRequest(bg, mask, "scratch", "x.png", "pool/0")], seed=0)
    assert image.shape == bg.shape and (image[mask > 0] == 7).all() and (image[mask == 0] == 100).all()
    assert (label == mask).all() and meta["nfe"] == 0

    # listed, with its description, in the group of the papers' methods
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    listed = out[:out.index("Ablations")]
    assert f"\n{TOY} " in listed and toy.description in listed and toy.departures in listed
    assert main(["methods", TOY]) == 0
    assert capsys.readouterr().out.startswith(f"{TOY} (generator: -)\n  {toy.description}")

    # grouped by the report: a synthesis method, before the reference rows, against the baseline
    assert method_order([catalog.NO_ANOMALIES, TOY, catalog.FAST], [catalog.FAST]) == [
        catalog.FAST, TOY, catalog.NO_ANOMALIES]
    assert baseline_pairs([TOY, catalog.BASELINE, catalog.REAL_FEWSHOT]) == {TOY: [catalog.BASELINE]}
    assert frontier_entries([TOY], {TOY: 0}) == {}

    # and gone again once unregistered
    catalog.unregister(TOY)
    assert TOY not in registry.REGISTRY
    with pytest.raises(FastError, match="methods"):
        load_config(_config())


def test_a_sampler_ablation_is_one_record():
    """A FAST ablation needs no module: the record names FAST's factory and its sampling."""
    from fast import methods as registry
    from fast.config import load_config, uses_farm
    from fast.methods import build_method

    name = "fast-ddim7"
    catalog.register(catalog.Method(name, registry.REGISTRY[catalog.FAST], "ablation: DDIM, 7 steps",
                                    group="ablations", generator=catalog.FAST, sampling=("ddim", 7, {"eta": 0.0}),
                                    family="ddim", farm=True))
    try:
        cfg = load_config({"experiment": "toy", "datasets": {"synthetic": {"categories": ["x"]}},
                           "methods": [name]})
        method = build_method(name, cfg)
        assert method.generator == catalog.FAST and uses_farm(name) and registry.SAMPLER_OF[name] == "ddim"
        sampler, steps, options = method.sampling_plan()
        assert (sampler, steps, options["eta"]) == ("ddim", 7, 0.0)
    finally:
        catalog.unregister(name)


def test_registration_refuses_a_clash():
    with pytest.raises(ValueError, match="already"):
        catalog.register(catalog.Method("stage", "x:build", "again"))
    with pytest.raises(ValueError, match="already"):
        catalog.register(catalog.Method(catalog.REAL_FEWSHOT, "x:build", "a reference row"))
    with pytest.raises(ValueError, match="group"):
        catalog.register(catalog.Method("toy-x", "x:build", "d", group="other"))
    with pytest.raises(ValueError, match="built in"):
        catalog.unregister("stage")
