"""Sphinx configuration of the skfairbilevel documentation.

Build (from the repository root, after ``pip install -e ".[doc]"``)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

The example gallery is executed during the build in the examples' quick mode
(``SKFB_EXAMPLE_QUICK=1``, set below unless already set); ``SKFB_EXAMPLE_QUICK=0``
builds it with the full settings, and ``-D plot_gallery=0`` skips running the examples.
"""

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

os.environ.setdefault("SKFB_EXAMPLE_QUICK", "1")
# the examples save their figure (for non-interactive runs) into this directory
os.environ.setdefault("SKFB_EXAMPLE_OUT", tempfile.mkdtemp(prefix="skfb_examples_"))
os.environ.setdefault("MPLBACKEND", "Agg")

import skfairbilevel  # noqa: E402

project = "skfairbilevel"
author = "the skfairbilevel developers"
copyright = "2026, the skfairbilevel developers"
release = skfairbilevel.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
    "sg_execution_times.rst",
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc ------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- sphinx-gallery --------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "write_computation_times": False,
    "reset_modules": ("matplotlib",),
}

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skfairbilevel {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
html_show_sourcelink = False
