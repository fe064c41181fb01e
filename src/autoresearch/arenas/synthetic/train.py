"""Synthetic arena: the editable part. Change the constants; the metric follows a known
function of them (see prepare.py), so a search's regret can be computed exactly."""

from prepare import evaluate, report

LEARNING_RATE = 0.01   # step size of the pretend optimizer
WIDTH = 64             # pretend model width
DROPOUT = 0.3          # pretend regularisation
WARMUP_STEPS = 500     # pretend learning-rate warmup

if __name__ == "__main__":
    print(f"training with lr={LEARNING_RATE} width={WIDTH} dropout={DROPOUT} warmup={WARMUP_STEPS}")
    report(evaluate(LEARNING_RATE, WIDTH, DROPOUT, WARMUP_STEPS))
