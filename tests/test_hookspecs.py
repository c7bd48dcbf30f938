"""Every hook is documented for plugin authors and exercised by a test."""

from __future__ import annotations

import inspect
from pathlib import Path

from ldns_framework import hookspecs

TESTS = Path(__file__).resolve().parent


def hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("ldns_")]


def test_every_hook_has_plugin_author_documentation():
    assert hook_names()
    for name in hook_names():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 80, f"{name} needs a docstring for plugin authors"


def test_every_hook_is_exercised_by_some_test():
    sources = {p: p.read_text() for p in TESTS.rglob("*.py") if p.name != Path(__file__).name}
    for name in hook_names():
        users = [p.name for p, text in sources.items() if f"def {name}(" in text]
        assert users, f"no test implements the hook {name}"


def test_hook_names_follow_the_convention():
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if fn.__module__ == hookspecs.__name__:
            assert name.startswith("ldns_"), name
