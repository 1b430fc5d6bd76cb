"""One source per registry: the config schema's enums name exactly what the registries hold
(formats, synthesis methods, segmenters, reference rows), the aias section's defaults and choices are
the AIAS sampler's own, and every format has dummy data."""

from __future__ import annotations

from pathlib import Path

import dummy_data as dummy
import yaml

import fast
from fast.data.registry import FORMATS
from fast.methods import REFERENCE_ROWS, REGISTRY
from fast.samplers import sampler_class, sampler_options
from fast.segmentation.models import SEGMENTERS

SCHEMA = yaml.safe_load((Path(fast.__file__).parent / "schemas" / "config.schema.yaml").read_text())["properties"]


def test_schema_dataset_names_are_the_formats():
    assert SCHEMA["datasets"]["propertyNames"]["enum"] == list(FORMATS)


def test_schema_methods_are_the_method_registry():
    assert SCHEMA["methods"]["items"]["enum"] == list(REGISTRY)


def test_schema_segmenters_and_reference_rows_are_the_registries():
    seg = SCHEMA["segmentation"]["properties"]
    assert seg["segmenters"]["items"]["enum"] == list(SEGMENTERS)
    assert seg["reference_rows"]["items"]["enum"] == list(REFERENCE_ROWS)


def test_every_format_has_dummy_data():
    assert set(dummy.DEFAULTS) == set(FORMATS)


def test_schema_aias_defaults_and_choices_are_the_samplers():
    aias = SCHEMA["aias"]["properties"]
    defaults = sampler_options("aias")
    shared = set(aias) - {"steps"}       # steps is the method's (the plan's argument), not an option
    assert shared <= set(defaults)
    assert {k: aias[k]["default"] for k in shared} == {k: defaults[k] for k in shared}
    choices = sampler_class("aias").Options.CHOICES
    assert {k: aias[k]["enum"] for k in shared if "enum" in aias[k]} == {k: list(v) for k, v in choices.items()}
