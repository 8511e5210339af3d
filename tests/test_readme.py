"""README.rst names exactly the config keys and signals the code has."""

from __future__ import annotations

import re

from servers import ROOT

from flask_voxcallbacks import CALLBACK_TYPES, payloads
from flask_voxcallbacks.config import CONFIG_KEYS

README = (ROOT / "README.rst").read_text()


def test_config_table_matches_the_code() -> None:
    documented = set(re.findall(r"^``(VOXCALLBACKS_\w+)``", README, re.M))
    assert documented == {key.name for key in CONFIG_KEYS}
    mentioned = set(re.findall(r"VOXCALLBACKS_[A-Z_]+", README))
    assert mentioned <= documented


def test_signal_table_matches_the_code() -> None:
    rows = re.findall(r"^``(\w+)``\s+``(\w+)``\s+(current|deprecated|legacy)$", README, re.M)
    names = payloads.signal_names()
    assert {(name, type_name) for name, type_name, _ in rows} == {
        (name, type_name) for type_name, name in names.items()
    }
    assert all(CALLBACK_TYPES[t].status == status for _, t, status in rows)
