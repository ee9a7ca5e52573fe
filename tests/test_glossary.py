"""One name per concept: every public result field, stored config key and CLI flag is in
the glossary (docs/glossary.md), the single list of names; names the project retired are
used nowhere in the API."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
SUBPACKAGES = ("theory", "langevin", "training", "stats", "compare", "io", "plot", "sweep", "reproduce", "diagnose")

# Names that must not appear as a field, config key or flag (the glossary says what replaced them).
RETIRED = {"beta", "betas", "target_beta", "trap_beta", "trap_betas", "depth", "P_c", "P_sp", "threads", "lrs",
           "batch_sizes", "spectrum_flag"}


def glossary_names() -> set[str]:
    """Names in the first column of the glossary's tables (back-quoted, comma-separated)."""
    names = set()
    for line in (DOCS / "glossary.md").read_text().splitlines():
        if not line.startswith("|") or line.startswith("|--") or line.startswith("| name"):
            continue
        first = line.split("|")[1]
        names.update(re.findall(r"`([^`]+)`", first))
    return names


def result_fields() -> set[str]:
    for sub in SUBPACKAGES:
        importlib.import_module(f"phasetools.{sub}")
    from phasetools.results import registry

    names = set()
    for cls in registry().values():
        if not cls.__module__.startswith("phasetools."):
            continue  # result types that other tests register for themselves
        names.update(f.name for f in dataclasses.fields(cls))
        names.update(getattr(cls, "_config_fields", ()))
    return names


def _walk(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _walk(sub)
        for opt in action.option_strings:
            if opt.startswith("--") and opt not in ("--help", "--version"):
                yield opt


def cli_flags() -> set[str]:
    from phasetools.cli._main import build_parser

    return set(_walk(build_parser()))


def test_glossary_has_entries():
    assert len(glossary_names()) > 50


def test_every_result_field_and_config_key_is_in_the_glossary():
    missing = sorted(result_fields() - glossary_names())
    assert not missing, f"result fields / config keys not in docs/glossary.md: {missing}"


def test_every_cli_flag_is_in_the_glossary():
    names = glossary_names()
    missing = sorted(f for f in cli_flags() if f not in names and f[2:].replace("-", "_") not in names)
    assert not missing, f"CLI flags not in docs/glossary.md (as the flag or as its API name): {missing}"


@pytest.mark.parametrize("source", ["fields", "flags"])
def test_retired_names_are_gone(source):
    names = result_fields() if source == "fields" else {f[2:].replace("-", "_") for f in cli_flags()}
    used = sorted(names & RETIRED)
    assert not used, f"retired names still in use ({source}): {used}; see docs/glossary.md"


def test_public_functions_do_not_take_retired_keywords():
    import inspect

    bad = []
    for sub in SUBPACKAGES:
        mod = importlib.import_module(f"phasetools.{sub}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if not callable(obj):
                continue
            try:
                params = inspect.signature(obj).parameters
            except (TypeError, ValueError):
                continue
            bad += [f"phasetools.{sub}.{name}({p})" for p in params if p in RETIRED]
    assert not bad, f"retired parameter names: {bad}"
