"""Every input kept in tests/fuzz_corpus/ (the seeds and each crash the fuzzer ever found) still
satisfies the properties of the fuzz target."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_parse_authenticate import ACCOUNTS, check

from flask_voxcallbacks.auth import authenticate
from flask_voxcallbacks.parsing import parse_batch

CORPUS = sorted((Path(__file__).parent / "fuzz_corpus").iterdir())


@pytest.mark.parametrize("path", CORPUS, ids=[path.name for path in CORPUS])
def test_corpus_input_keeps_the_properties(path: Path) -> None:
    check(path.read_bytes())


def test_the_seed_vectors_are_authentic_for_the_fuzz_target() -> None:
    vectors = [path for path in CORPUS if path.name.startswith("vector-")]
    assert len(vectors) == 3
    for path in vectors:
        items = parse_batch(path.read_bytes())
        assert all(authenticate(item, ACCOUNTS).authentic for item in items), path.name


def test_the_property_catches_a_broken_authentication(monkeypatch) -> None:
    import fuzz_parse_authenticate

    def accept_everything(item, accounts):
        from flask_voxcallbacks.auth import Authentic

        return Authentic(1234567, 1)

    monkeypatch.setattr(fuzz_parse_authenticate, "authenticate", accept_everything)
    with pytest.raises((AssertionError, KeyError)):
        check(b'{"callbacks": [{"account_id": 1234567, "callback_id": 1, "hash": "0"}]}')
