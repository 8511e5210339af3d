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
# The payload's type variable reads as what it stands for.
autodoc_type_aliases = {"P_co": "flask_voxcallbacks.payloads.Payload"}
exclude_patterns = ["_build"]
# Furo: code blocks and wide tables scroll within the page instead of running past its margin.
html_theme = "furo"
