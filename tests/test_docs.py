"""The documentation lists what the package exports, and its pages are all reachable.

Every name in the ``__all__`` of a public module (the package, ``baselines``,
``metrics``, ``datasets``, ``compare``, ``exceptions`` and every module of ``nn``) must
have an entry in the API reference (``doc/api.rst``), and every entry must be such a
name; every page of the user guide must be in its table of contents. The documentation
build (``sphinx -W``) renders the entries; these checks only need the text.
"""

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import skfairbilevel.nn

DOC = Path(__file__).resolve().parents[1] / "doc"
PUBLIC = [
    "skfairbilevel",
    "skfairbilevel.baselines",
    "skfairbilevel.metrics",
    "skfairbilevel.datasets",
    "skfairbilevel.compare",
    "skfairbilevel.exceptions",
] + [f"skfairbilevel.nn.{m.name}" for m in pkgutil.iter_modules(skfairbilevel.nn.__path__)]


def documented(rst):
    """Fully qualified names of the autosummary entries of ``rst``."""
    names, module, in_summary = set(), None, False
    for line in rst.splitlines():
        directive = re.match(r"\.\. ([\w:-]+)::\s*(\S*)", line.strip())
        if directive:
            if directive[1] == "currentmodule":
                module = directive[2]
            in_summary = directive[1] == "autosummary"
            continue
        if not in_summary or not line.strip() or line.strip().startswith(":"):
            continue
        if not line.startswith("   "):  # the end of the directive's body
            in_summary = False
            continue
        names.add(f"{module}.{line.strip()}")
    return names


def exported():
    """Fully qualified names of the public modules' ``__all__`` (dunders left out)."""
    names = set()
    for name in PUBLIC:
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), f"{name} has no __all__"
        names |= {f"{name}.{n}" for n in module.__all__ if not n.startswith("__")}
    return names


def test_the_parser_reads_entries_under_the_current_module():
    rst = (
        ".. currentmodule:: a.b\n\n.. autosummary::\n   :toctree: generated/\n\n   f\n   m.g\n\n"
        "Text\n\n.. currentmodule:: c\n\n.. autosummary::\n\n   h\n"
    )
    assert documented(rst) == {"a.b.f", "a.b.m.g", "c.h"}


def test_every_public_name_is_in_the_api_reference():
    missing = sorted(exported() - documented((DOC / "api.rst").read_text()))
    assert not missing, f"add these to doc/api.rst: {missing}"


def test_every_api_entry_is_a_public_name():
    extra = sorted(documented((DOC / "api.rst").read_text()) - exported())
    assert not extra, f"doc/api.rst lists names no module exports in __all__: {extra}"


@pytest.mark.parametrize("folder", ["user_guide"])
def test_every_user_guide_page_is_in_its_table_of_contents(folder):
    index = (DOC / folder / "index.rst").read_text()
    listed = set(re.findall(r"^   (\w+)\s*$", index, flags=re.MULTILINE))
    pages = {p.stem for p in (DOC / folder).glob("*.rst")} - {"index"}
    assert pages <= listed, f"not in doc/{folder}/index.rst: {sorted(pages - listed)}"
