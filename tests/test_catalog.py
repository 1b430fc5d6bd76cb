"""Workflow catalog conventions (snakemake-workflows style): `snakemake --lint` prints nothing;
every rule names the one conda environment; `min_version` is pyproject's lower bound of Snakemake;
every config key has a description and config/README.md is generated from the schema; every table
and figure that `snakemake --report` bundles has a caption."""

from __future__ import annotations

import ast
import importlib.util
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from workflow_support import REPO, copy_repo, run, snakemake

RULES = REPO / "workflow" / "rules"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
ENV = REPO / "workflow" / "envs" / "fast.yaml"
# Outputs under tables/ or figures/ that the report leaves out on purpose, and why.
NOT_IN_REPORT = {"summary.json": "the DVC metrics file: data for tools, the same numbers as summary.csv"}
FIGURE_OR_TABLE = re.compile(r"/(tables|figures)/")
# The JSON Schema keywords the config schema uses: anything else is a typo, e.g. an unquoted comma
# in a flow mapping ({description: a, b}) that turns half a description into a key.
KEYWORDS = {"$schema", "description", "type", "properties", "additionalProperties", "required",
            "default", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
            "multipleOf", "items", "minItems", "maxItems", "uniqueItems", "minProperties",
            "propertyNames"}


# ------------------------------------------------------------------------------------ helpers
def rules() -> dict[str, tuple[Path, str]]:
    """rule name -> (its .smk file, its body text)."""
    out = {}
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        for m in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|[ \t]*\n)*)", text, flags=re.M):
            out[m.group(1)] = (smk, m.group(2))
    return out


def directive(body: str, name: str) -> str | None:
    """The text of one directive of a rule body (dedented), or None."""
    m = re.search(rf"^    {name}:(.*)\n((?:        .*\n|[ \t]*\n)*)", body, flags=re.M)
    if not m:
        return None
    return (m.group(1).strip() + "\n" + textwrap.dedent(m.group(2))).strip()


def output_items(body: str) -> list[tuple[str | None, ast.expr]]:
    """(name or None, expression) of each output of a rule: the block is a Python argument list."""
    block = directive(body, "output")
    if block is None:
        return []
    call = ast.parse(f"_(\n{block}\n)", mode="eval").body
    return [(None, a) for a in call.args] + [(k.arg, k.value) for k in call.keywords]


def literal_tail(node: ast.expr) -> str:
    """The literal text of a path expression (f-string pieces joined, placeholders as {})."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.Call) and node.args:  # directory(...), temp(...), ...
        return literal_tail(node.args[0])
    return ""


def is_report(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "report"


def load_config_docs():
    spec = importlib.util.spec_from_file_location("config_docs", REPO / "scripts" / "config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------- lint, conda
def test_snakemake_lint_prints_no_lint(tmp_path):
    repo = copy_repo(tmp_path / "repo", git=False)
    result = run(snakemake("--lint"), repo, timeout=180, check=False)
    assert result.returncode == 0 and "Lints for" not in result.stdout, result.stdout[-6000:]


def test_every_rule_names_the_one_conda_environment():
    # Snakemake's top-level `conda:` only injects an environment into Snakemake's own process (and
    # refuses a python pin); the linter asks every rule for its own, so each names the same file.
    found = rules()
    assert len(found) >= 10, sorted(found)
    for name, (smk, body) in found.items():
        env = directive(body, "conda")
        assert env is not None, f"rule {name} ({smk.name}) has no conda: directive"
        assert (smk.parent / ast.literal_eval(env)).resolve() == ENV, (name, env)


def test_rule_environment_matches_environment_yml():
    rule_env = yaml.safe_load(ENV.read_text())
    cluster_env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert rule_env["channels"] == cluster_env["channels"]

    def conda_deps(env):
        return [d for d in env["dependencies"] if isinstance(d, str)]

    assert conda_deps(rule_env) == conda_deps(cluster_env)
    pip = next(d["pip"] for d in rule_env["dependencies"] if isinstance(d, dict))
    # conda runs pip from the env file's directory: from workflow/envs/ (conda env create -f) and
    # from .snakemake/conda/ (Snakemake's copy) alike, ../.. is the repository root
    editable = [p.split(maxsplit=1)[1] for p in pip if p.startswith("-e ")]
    assert editable and (ENV.parent / editable[0].split("[")[0]).resolve() == REPO, pip


def test_min_version_is_the_lower_bound_of_pyproject():
    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the requirement strings, read plainly
        deps = re.findall(r'^\s*"([^"]+)",?\s*(?:#.*)?$', text, flags=re.M)
    else:
        project = tomllib.loads(text)["project"]
        deps = [*project["dependencies"], *[d for ds in project["optional-dependencies"].values() for d in ds]]
    snakemake_reqs = [Requirement(d) for d in deps if re.match(r"snakemake\b(?!-)", d)]
    assert len(snakemake_reqs) == 1, snakemake_reqs
    lower = [Version(s.version) for s in snakemake_reqs[0].specifier if s.operator == ">="]
    found = re.findall(r'^min_version\("([^"]+)"\)', (REPO / "Snakefile").read_text(), flags=re.M)
    assert len(lower) == 1 and len(found) == 1, (snakemake_reqs, found)
    assert Version(found[0]) == lower[0], f"Snakefile min_version {found[0]} vs pyproject {snakemake_reqs[0]}"


# -------------------------------------------------------------------------------------- schema
def schema_keys(schema: dict, prefix: str = ""):
    """(dotted path, sub-schema) of every key, additionalProperties entries as <name>."""
    for name, sub in schema.get("properties", {}).items():
        yield prefix + name, sub
        yield from schema_keys(sub, f"{prefix}{name}.")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield prefix + "<name>", extra
        yield from schema_keys(extra, f"{prefix}<name>.")


def test_every_schema_key_has_a_description():
    schema = yaml.safe_load(SCHEMA.read_text())
    keys = list(schema_keys(schema))
    assert len(keys) > 50 and "diffusion.train.lr" in dict(keys) and "datasets.<name>.root" in dict(keys)
    missing = [k for k, sub in keys if not str(sub.get("description", "")).strip()]
    assert not missing, f"schema keys without a description: {missing}"


def test_schema_uses_only_known_keywords():
    def walk(node, path):
        for key, value in node.items():
            if key == "properties":
                for name, sub in value.items():
                    yield from walk(sub, f"{path}.{name}")
                continue
            if key not in KEYWORDS:
                yield f"{path or '(top)'}: {key!r}"
            if isinstance(value, dict):
                yield from walk(value, f"{path}/{key}")

    unknown = list(walk(yaml.safe_load(SCHEMA.read_text()), ""))
    assert not unknown, f"not JSON Schema keywords (a YAML slip?): {unknown}"


def test_config_readme_is_generated_from_the_schema():
    docs = load_config_docs()
    expected = docs.render(yaml.safe_load(SCHEMA.read_text()))
    assert (REPO / "config" / "README.md").read_text() == expected, (
        "config/README.md is out of date: run python scripts/config_docs.py")
    assert docs.main(["--check"]) == 0
    for key, _ in schema_keys(yaml.safe_load(SCHEMA.read_text())):
        assert f"| `{key}` |" in expected, key


def test_config_docs_check_fails_when_a_key_is_added(tmp_path):
    docs = load_config_docs()
    schema = yaml.safe_load(SCHEMA.read_text())
    out = tmp_path / "README.md"
    assert docs.main(["--schema", str(SCHEMA), "--out", str(out)]) == 0
    assert docs.main(["--check", "--schema", str(SCHEMA), "--out", str(out)]) == 0
    schema["properties"]["report"]["properties"]["new_key"] = {"type": "boolean", "default": False,
                                                                "description": "a new key"}
    changed = tmp_path / "schema.yaml"
    changed.write_text(yaml.safe_dump(schema))
    assert docs.main(["--check", "--schema", str(changed), "--out", str(out)]) == 1
    assert docs.main(["--schema", str(changed), "--out", str(out)]) == 0
    assert "| `report.new_key` | boolean | `false` | a new key |" in out.read_text()


# -------------------------------------------------------------------------------------- report
def test_every_report_output_has_an_existing_caption_and_a_category():
    used, calls = set(), 0
    for name, (smk, body) in rules().items():
        for key, node in output_items(body):
            if not is_report(node):
                continue
            calls += 1
            kw = {k.arg: k.value for k in node.keywords}
            assert "caption" in kw and "category" in kw, f"rule {name} output {key}: report() without caption/category"
            caption = (smk.parent / ast.literal_eval(kw["caption"])).resolve()
            assert caption.is_file() and caption.read_text().strip(), f"rule {name} output {key}: {caption}"
            used.add(caption)
    assert calls >= 9
    snakefile = (REPO / "Snakefile").read_text()
    workflow_caption = re.findall(r'^report:\s*"([^"]+)"', snakefile, flags=re.M)
    assert len(workflow_caption) == 1 and (REPO / workflow_caption[0]).is_file(), workflow_caption
    used.add((REPO / workflow_caption[0]).resolve())
    unused = sorted(p.name for p in (REPO / "workflow" / "report").glob("*.rst") if p.resolve() not in used)
    assert not unused, f"captions no output uses: {unused}"


def test_every_table_and_figure_is_in_the_report():
    found = []
    for name, (_, body) in rules().items():
        for key, node in output_items(body):
            path = literal_tail(node.args[0] if is_report(node) else node)
            if not FIGURE_OR_TABLE.search(path):
                continue
            found.append(path)
            if Path(path).name in NOT_IN_REPORT:
                assert not is_report(node), f"{path} is listed in NOT_IN_REPORT but is in the report"
                continue
            assert is_report(node), f"rule {name} output {key or path}: a table/figure without report(caption=...)"
    names = {Path(p).name for p in found}
    assert {"comparison.md", "comparison.tex", "differences.csv", "sample_grid.png", "metrics"} <= names, names


@pytest.mark.parametrize("path", ["comparison.md", "x.png"])
def test_the_parser_sees_unwrapped_outputs(path):
    body = f'    output:\n        t=f"{{RESULTS}}/tables/{path}",\n        r=report("a/figures/b.png", caption="c"),\n'
    items = dict(output_items(body))
    assert not is_report(items["t"]) and is_report(items["r"])
    assert FIGURE_OR_TABLE.search(literal_tail(items["t"]))


def test_fast_methods_is_grouped_and_says_each_departure_once(capsys):
    """Three groups; the `fast` model's departures printed once (its ablations and frontier rows
    refer back to it); `fast methods NAME` prints one method in full; an unknown name is exit 2."""
    from fast.cli import main
    from fast.methods import REGISTRY
    from fast.methods.listing import describe_parts

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    fast_departures = describe_parts("fast")[1]
    assert out.count(fast_departures) == 1 and out.count("departures (all") == 2
    assert out.count("as `fast` above") == 2
    assert all(f"\n{name} " in out for name in REGISTRY)
    assert len(out.splitlines()) < len(REGISTRY) + 25
    assert main(["methods", "stage"]) == 0
    one = capsys.readouterr().out
    assert one.startswith("stage (generator: stage)") and describe_parts("stage")[1] in one
    assert main(["methods", "nope"]) == 2
