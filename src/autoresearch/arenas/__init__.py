"""Bundled example arenas, copied out by ``autoresearch init --example NAME``."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
EXAMPLES = {
    "tiny-gpt": "a small GPT learning Shakespeare byte by byte on a CPU, scored in bits per byte (needs torch)",
    "synthetic": "a sub-second arena whose metric is a known function of four constants plus noise (tests, benchmarks)",
}


def example_dir(name: str) -> Path:
    return HERE / name
