"""Slots: where experiments run concurrently, and the environment each slot's runs get.

A slot is described by a short string (config ``[runner] slots`` or ``--slots``):

- ``cuda:N``   one GPU: ``CUDA_VISIBLE_DEVICES=N``; ``cuda:N+M`` gives a slot two GPUs.
- ``cpu``      the CPU, sharing the machine's cores equally with the other ``cpu`` slots.
- ``cpu:T``    the CPU with T threads.
- ``local``    no device settings at all: runs see what the harness sees.

CPU slots set ``CUDA_VISIBLE_DEVICES=""`` and the usual thread-count variables
(``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``NUMEXPR_NUM_THREADS``)
so that N concurrent runs do not each start one thread per core. A bare number N means
one ``local`` slot when N = 1 and N ``cpu`` slots otherwise. Every run also gets
``AUTORESEARCH_SLOT`` (the slot's index).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_CUDA = re.compile(r"cuda:(\d+(?:\+\d+)*)")
_CPU = re.compile(r"cpu(?::(\d+))?")
FORMS = "cuda:N, cuda:N+M, cpu, cpu:THREADS, local"


@dataclass(frozen=True)
class Slot:
    index: int
    name: str                         # the descriptor, e.g. "cuda:1"
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How the ledger names the slot: ``slot1=cuda:1``."""
        return f"slot{self.index}={self.name}"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_slots(value: int | str | Sequence[str], cores: int) -> list[Slot]:
    """Slots from a count, a comma-separated string, or a list of descriptors.

    Raises ValueError with a message that names the bad entry and the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError("slots must be a number or a list of slot descriptors")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"slots must be at least 1, got {value}")
        if value == 1:
            return [Slot(0, "local")]
        value = ["cpu"] * value
    items = [s.strip() for s in value.split(",")] if isinstance(value, str) else [str(s).strip() for s in value]
    if not items or any(not s for s in items):
        raise ValueError(f"empty slot descriptor in {value!r}; use {FORMS}")
    shared_cpu = sum(1 for s in items if s == "cpu")
    slots: list[Slot] = []
    gpus: dict[str, int] = {}
    for i, item in enumerate(items):
        cuda, cpu = _CUDA.fullmatch(item), _CPU.fullmatch(item)
        if item == "local":
            slots.append(Slot(i, item, {}))
        elif cuda:
            devices = cuda.group(1).split("+")
            for d in devices:
                if d in gpus:
                    raise ValueError(f"slots {gpus[d]} and {i} both use GPU {d}; give each slot its own device")
                gpus[d] = i
            slots.append(Slot(i, item, {"CUDA_VISIBLE_DEVICES": ",".join(devices)}))
        elif cpu:
            threads = int(cpu.group(1)) if cpu.group(1) else max(1, cores // shared_cpu)
            if threads < 1:
                raise ValueError(f"slot {item!r}: the thread count must be at least 1")
            env = {"CUDA_VISIBLE_DEVICES": "", **{v: str(threads) for v in THREAD_VARS}}
            slots.append(Slot(i, item if cpu.group(1) else f"cpu:{threads}", env))
        else:
            raise ValueError(f"unknown slot {item!r}; use one of {FORMS}")
    return slots
