"""``benchmarks/results.json``: each benchmark keeps its latest figures under its own name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"


def save(name: str, entry: dict[str, Any]) -> None:
    """Replace the ``name`` entry, keeping the other benchmarks' entries."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[name] = entry
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
