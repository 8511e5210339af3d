"""Sphinx configuration for the flask-voxcallbacks documentation."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import flask_voxcallbacks  # noqa: E402

project = "flask-voxcallbacks"
author = "flask-voxcallbacks contributors"
copyright = "2026, flask-voxcallbacks contributors"
release = flask_voxcallbacks.__version__
version = release

extensions = ["sphinx.ext.autodoc", "voxdocs"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
exclude_patterns = ["_build"]
html_theme = "alabaster"
