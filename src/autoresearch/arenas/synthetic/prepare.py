"""Synthetic arena: the fixed part (readonly). The metric is a known function of the
constants in train.py, plus noise, so benchmarks can compute the true regret.

    val_loss = 1.0
             + 0.50 * log10(LEARNING_RATE / 0.003) ** 2
             + 0.05 * log2(WIDTH / 256) ** 2
             + 2.00 * (DROPOUT - 0.1) ** 2
             + 0.10 * log10(WARMUP_STEPS / 100) ** 2
             + noise

The optimum is 1.0 at LEARNING_RATE=0.003, WIDTH=256, DROPOUT=0.1, WARMUP_STEPS=100.
Noise has two parts, like real training under a wall-clock budget: one drawn from
AUTORESEARCH_SEED (repeatable for the same seed), one drawn fresh on every run
(throughput jitter, not repeatable). Both are Gaussian with the standard deviations below.
"""

import json
import math
import os
import random
import time

NOISE_SEED_SD = 0.0  # part of the noise fixed by the seed
NOISE_RUN_SD = 0.0   # part that differs on every run, even with the same seed
RUN_SECONDS = 0.0    # how long a run pretends to train (capped by the time budget)

OPTIMUM = {"LEARNING_RATE": 0.003, "WIDTH": 256, "DROPOUT": 0.1, "WARMUP_STEPS": 100}


def true_loss(learning_rate, width, dropout, warmup_steps):
    """The noise-free metric. Raises ValueError outside the domain (a 'crash')."""
    if learning_rate <= 0 or width <= 0 or warmup_steps <= 0:
        raise ValueError(f"constants out of domain: lr={learning_rate} width={width} warmup={warmup_steps}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"DROPOUT must be in [0, 1), got {dropout}")
    return (
        1.0
        + 0.50 * math.log10(learning_rate / 0.003) ** 2
        + 0.05 * math.log2(width / 256) ** 2
        + 2.00 * (dropout - 0.1) ** 2
        + 0.10 * math.log10(warmup_steps / 100) ** 2
    )


def evaluate(learning_rate, width, dropout, warmup_steps):
    """Pretend to train for the budget, then return the summary (metric plus extras)."""
    t0 = time.time()
    seed = int(os.environ.get("AUTORESEARCH_SEED", "0"))
    budget = float(os.environ.get("AUTORESEARCH_TIME_BUDGET", "60"))
    if RUN_SECONDS > 0:
        time.sleep(min(RUN_SECONDS, budget))
    loss = true_loss(learning_rate, width, dropout, warmup_steps)
    loss += random.Random(seed).gauss(0.0, 1.0) * NOISE_SEED_SD
    loss += random.Random(os.urandom(16)).gauss(0.0, 1.0) * NOISE_RUN_SD
    return {
        "val_loss": loss,
        "training_seconds": time.time() - t0,
        "peak_memory_mb": 4.0 * width,
        "num_params_M": width * width * 1e-6,
    }


def report(summary):
    """Print karpathy's summary block and write the JSON result file when asked to."""
    print("---")
    for key, value in summary.items():
        print(f"{key + ':':<20}{value:.6f}")
    path = os.environ.get("AUTORESEARCH_RESULT_FILE")
    if path:
        with open(path, "w") as f:
            json.dump(summary, f)
