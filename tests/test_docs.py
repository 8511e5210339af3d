"""The documentation names exactly the config keys and signals the code has."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ROOT

from flask_voxcallbacks import CALLBACK_TYPES, signals
from flask_voxcallbacks.config import CONFIG_KEYS

pytestmark = pytest.mark.subprocess

DOCS = ROOT / "docs"
SOURCES = [*DOCS.glob("*.rst"), ROOT / "README.rst", ROOT / "CHANGES.rst"]
KEYS = {key.name for key in CONFIG_KEYS}
LITERAL = '<code class="docutils literal notranslate"><span class="pre">{}</span></code>'
SIGNALS = set(signals.signal_names().values()) | {
    "callback_received",
    "callback_rejected",
    "callback_duplicate",
}


def sphinx(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    result = sphinx(DOCS, out)
    assert result.returncode == 0, result.stderr
    return out


def test_every_config_key_named_in_the_sources_exists() -> None:
    for path in SOURCES:
        named = set(re.findall(r"VOXCALLBACKS_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
        assert named <= KEYS, f"{path.name} names unknown keys {named - KEYS}"


def test_every_signal_named_in_the_sources_exists() -> None:
    for path in SOURCES:
        text = path.read_text()
        named = set(re.findall(r":voxsignal:`(\w+)`", text))
        named |= set(re.findall(r"import[^\n]*?\b(\w+_(?:reached|received|rejected))\b", text))
        assert named <= SIGNALS, f"{path.name} names unknown signals {named - SIGNALS}"


def test_built_configuration_page_lists_every_key(built: Path) -> None:
    page = (built / "configuration.html").read_text()
    table = page.split("<table", 1)[1].split("</table>", 1)[0]
    assert set(re.findall(LITERAL.format(r"(VOXCALLBACKS_\w+)"), table)) == KEYS


def test_built_signals_page_lists_every_signal_and_field(built: Path) -> None:
    page = (built / "signals.html").read_text().split('id="nested-items"')[0]
    headings = set(re.findall("<h3>" + LITERAL.format(r"(\w+)"), page))
    assert headings == set(signals.signal_names().values())
    for type_name, spec in CALLBACK_TYPES.items():
        assert "Wire type " + LITERAL.format(type_name) in page
        for field_name, _ in spec.payload.wire_fields():
            assert LITERAL.format(field_name) in page
    for general in ("callback_received", "callback_rejected", "callback_duplicate"):
        assert LITERAL.format(general) in page


def test_a_misnamed_signal_fails_the_docs_build(tmp_path: Path) -> None:
    copy = tmp_path / "docs"
    shutil.copytree(DOCS, copy, ignore=shutil.ignore_patterns("_build"))
    with (copy / "signals.rst").open("a") as page:
        page.write("\nSee also :voxsignal:`low_balance_reached`.\n")
    result = sphinx(copy, tmp_path / "out")
    assert result.returncode != 0
    assert "low_balance_reached" in result.stderr


def test_rejection_reasons_are_documented_where_signals_are() -> None:
    from flask_voxcallbacks.auth import REASONS

    for path in (DOCS / "signals.rst", ROOT / "README.rst"):
        text = path.read_text()
        assert all(f"``{reason}``" in text for reason in REASONS), path.name
