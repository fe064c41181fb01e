"""Bundled example arenas, copied out by ``autoresearch init --example NAME``."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
EXAMPLES = {
    "synthetic": "a sub-second arena whose metric is a known function of four constants plus noise (tests, benchmarks)",
}


def example_dir(name: str) -> Path:
    return HERE / name
