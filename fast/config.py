"""Load and validate experiment configs against the one JSON schema, filling its defaults.

The schema lives in ``fast/schemas/config.schema.yaml``; the Snakefile validates the same file
(``workflow/schemas/config.schema.yaml`` links to it).
"""

from __future__ import annotations

import copy
import difflib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable

import jsonschema
import yaml

from fast import catalog
from fast.errors import FastError


@lru_cache(maxsize=1)
def _schema_file() -> dict:
    text = resources.files(__package__).joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


@lru_cache(maxsize=4)
def _schema(methods: tuple[str, ...]) -> dict:
    out = copy.deepcopy(_schema_file())
    out["properties"]["methods"]["items"]["enum"] = list(methods)
    return out


def schema() -> dict:
    """The config schema, its ``methods`` enum the catalog's names (the file lists the built-in ones
    for the Snakefile's validation; tests/test_registries.py keeps the two equal), so that a method
    registered at run time (fast.catalog.register) is accepted too."""
    return _schema(catalog.names())


def _with_defaults(validator_cls):
    """A validator that also fills ``default`` values (the jsonschema FAQ recipe)."""
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema_)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})



def _error_message(e, source: str) -> str:
    path = [str(p) for p in e.absolute_path]
    key = ".".join(path) or "(top level)"
    if e.validator == "additionalProperties" and isinstance(e.instance, dict):
        allowed = sorted((e.schema.get("properties") or {}))
        extra = sorted(k for k in e.instance if k not in allowed)
        if extra:
            name = ".".join([*path, str(extra[0])])
            hint = difflib.get_close_matches(str(extra[0]), allowed, n=1)
            did = f"did you mean '{'.'.join([*path, hint[0]])}'? " if hint else ""
            return (f"{source}: unknown config key '{name}'; {did}allowed keys in "
                    f"'{key}': {', '.join(allowed) or 'none'}. "
                    f"See workflow/schemas/config.schema.yaml.")
    return (f"{source}: invalid config value at '{key}': {e.message}. "
            f"See workflow/schemas/config.schema.yaml for the allowed values.")


# Which methods sample a diffusion generator, which generators carry FARM and which methods sample
# with aias.steps: their catalog records (fast.catalog). Methods with their own step counts
# (fast-aias50, the fast-<sampler>-nfe<N> sweep, stage, sard) are checked by
# DiffusionMethod.validate_sampling, before `fast synthesize` loads a model.
def is_diffusion_method(name: str) -> bool:
    record = catalog.get(name)
    return record is not None and record.generator is not None


def uses_farm(name: str) -> bool:
    record = catalog.get(name)
    return record is not None and record.farm


def samples_with_aias_steps(name: str) -> bool:
    record = catalog.get(name)
    return record is not None and record.aias_steps


def __getattr__(name: str):
    # the method lists of earlier versions, derived from the catalog when asked for
    if name == "DIFFUSION_METHODS":
        return tuple(m.name for m in catalog.methods() if m.generator is not None)
    if name == "AIAS_CONFIG_STEPS_METHODS":
        return tuple(m.name for m in catalog.methods() if m.aias_steps)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def aias_limits(T: int, t_fine: int, steps: int, what: str = "aias.steps") -> str | None:
    """Why (steps, t_fine) do not fit a schedule of T timesteps, or None (fast.samplers.aias)."""
    if t_fine > T - 1:
        return (f"aias.t_fine {t_fine} must be below diffusion.num_train_timesteps ({T}): it counts the "
                f"final single DDPM steps; lower aias.t_fine (default 2)")
    if steps > T - t_fine:
        return (f"{what} {steps} is more than the {T - t_fine} segments a schedule of "
                f"diffusion.num_train_timesteps {T} leaves after aias.t_fine {t_fine}; lower {what} "
                f"(the paper uses 10) or raise diffusion.num_train_timesteps")
    return None


def check_consistency(cfg: dict) -> str | None:
    """Cross-key rules the schema cannot express; the message of the first broken one, or None."""
    methods = list(cfg.get("methods", []))
    d = cfg["diffusion"]
    diffusion = [m for m in methods if is_diffusion_method(m)]
    if not diffusion:
        return None
    res, patch = int(cfg["resolution"]), d.get("patch")
    if patch and int(patch) > res:  # else only `fast train` would find out, after the data rules ran
        return (f"diffusion.patch {patch} is larger than resolution {res}: the generator's windows are cut "
                f"from the prepared images; lower diffusion.patch (at most {res}), set it to null (whole "
                f"images) or raise resolution")
    side, key = (int(patch), "diffusion.patch") if patch else (res, "resolution")
    if d["backbone"] == "pixel":
        levels = len(d["unet"]["block_out_channels"])
        need = 2 ** (levels - 1)
        times = {1: "once", 2: "twice"}.get(levels - 1, f"{levels - 1} times")
        why = [f"the pixel UNet halves it {times}: diffusion.unet.block_out_channels has {levels} levels"]
        if any(uses_farm(m) for m in diffusion):
            if need < 4:
                why.append("FARM halves it twice")
            need = max(need, 4)
        if side % need:
            lo = side - side % need
            fits = [v for v in (lo, lo + need) if v >= 8]
            fix = f"{key}: {' or '.join(str(v) for v in fits)}" + ("" if patch else " (or set diffusion.patch)")
            return (f"{key} {side} does not fit the generator: it must be divisible by {need} "
                    f"({'; '.join(why)}); use {fix}")
    T = int(d["num_train_timesteps"])
    a = cfg["aias"]
    if any(uses_farm(m) for m in diffusion):  # every FAST variant may sample with AIAS
        msg = aias_limits(T, int(a["t_fine"]), 1)
        if msg:
            return msg
    if any(samples_with_aias_steps(m) for m in diffusion):
        msg = aias_limits(T, int(a["t_fine"]), int(a["steps"]))
        if msg:
            return msg
    return None


def validate_config(cfg: dict, source: str = "config") -> dict:
    """Validate ``cfg`` (not modified) and return a copy with every default filled in.

    Raises FastError naming the offending key path, e.g. ``config.yaml: aias.steps: -1 is less
    than the minimum of 1``; cross-key rules (generator geometry, AIAS steps) are checked too.
    """
    cfg = copy.deepcopy(cfg)
    validator_cls = jsonschema.validators.validator_for(schema())
    # One pass fills nested defaults too: a default is set before the validator descends into it.
    for _err in _with_defaults(validator_cls)(schema()).iter_errors(cfg):
        pass
    errors = sorted(validator_cls(schema()).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        raise FastError(_error_message(errors[0], source))
    msg = check_consistency(cfg) or next((m for m in (check(cfg) for check in _CHECKS) if m), None)
    if msg:
        raise FastError(f"{source}: {msg}")
    return cfg


# Checks that need what only a higher layer knows (each method knows its own options) are registered
# by that layer when it is imported (fast.methods registers method_options_problem), so this module
# imports nothing from above and every config a method will read is still refused where it loads.
_CHECKS: list[Callable[[dict], str | None]] = []


def register_check(check: Callable[[dict], str | None]) -> None:
    """Run ``check(cfg) -> problem or None`` on every validated config from now on."""
    if check not in _CHECKS:
        _CHECKS.append(check)


class DuplicateKey(yaml.YAMLError):
    """A mapping key given twice: PyYAML would keep the last one silently."""

    def __init__(self, key, first_line: int, line: int):
        super().__init__(f"key {key!r} appears twice (lines {first_line} and {line})")
        self.key, self.first_line, self.line = key, first_line, line


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a duplicate mapping key (a second `diffusion:` block would
    otherwise replace the first one whole, without a word)."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may well be repeated
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.setdefault(key, key_node.start_mark.line + 1)
        except TypeError:  # an unhashable key: construct_mapping says why
            break
        if first != key_node.start_mark.line + 1:
            raise DuplicateKey(key, first, key_node.start_mark.line + 1)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def read_config_file(path: Path) -> dict:
    """The mapping in YAML (or JSON) file ``path``; FastError for a file that is not UTF-8 text,
    not YAML, has a key twice or is not a mapping."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FastError(f"{path}: not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        f"a config is YAML text: check the path, or save the file as UTF-8") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except DuplicateKey as exc:
        raise FastError(f"{path}: {exc}; keep one (the second would replace the first)") from None
    except yaml.YAMLError as exc:
        raise FastError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise FastError(f"{path}: a config must be a mapping of keys to values")
    return data


def load_config(path_or_json: str | Path | dict) -> dict:
    """Load a config from a YAML/JSON file path, a JSON string or a dict; validate; fill defaults."""
    if isinstance(path_or_json, dict):
        return validate_config(path_or_json)
    text = str(path_or_json)
    if text.lstrip().startswith("{"):
        try:
            return validate_config(json.loads(text), "config JSON")
        except json.JSONDecodeError as exc:
            raise FastError(f"config JSON is not valid JSON: {exc}") from None
    path = Path(text)
    if not path.is_file():
        raise FastError(f"config file not found: {path}")
    return validate_config(read_config_file(path), str(path))


def resolve_device(name: str):
    """The torch device of config key ``device`` (auto | cpu | cuda): one rule for generators and
    segmenters."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FastError("config device: cuda requested but no CUDA device is available (use auto or cpu)")
    return torch.device(name)
