"""tiny-gpt, the fixed part (readonly): data, byte-level tokenization, the train/val split,
and the evaluation. A laptop-scale copy of karpathy/autoresearch's prepare.py.

    python prepare.py --eval      # the arena's eval command: score ckpt.pt written by train.py

The evaluation loads the checkpoint, rebuilds the model with train.build_model(config),
and computes the cross-entropy of the model's logits on a fixed slice of the validation
text with its own code. The metric is bits per byte (val_bpb): with byte-level tokens,
mean cross-entropy in nats / ln 2.
"""

import json
import lzma
import math
import os
import resource
import sys
import time
from pathlib import Path

import torch

# The evaluator runs the candidate's model code in this process. What the loss is computed
# with is bound here, before that code is imported, so a candidate that replaces these
# torch functions or tensor methods when it is imported does not change the score.
_log_softmax, _gather, _sum = torch.log_softmax, torch.gather, torch.sum
_item, _double, _numel = torch.Tensor.item, torch.Tensor.double, torch.Tensor.numel

HERE = Path(__file__).resolve().parent
# 42 plays and poems, 5,057,324 bytes of ASCII text: the first 90 % for training, the last
# 10 % held out. Two files, so that the harness can keep the validation text from the
# training run ([arena] eval_only: under the sandbox the run cannot read it at all).
TRAIN_FILE = HERE / "train.txt.xz"        # 4,551,591 bytes
VAL_FILE = HERE / "val.txt.xz"            # 505,733 bytes
VOCAB_SIZE = 256                          # byte-level: every byte is a token
MAX_SEQ_LEN = 128                         # context length for training and evaluation
EVAL_TOKENS = 2**16                       # bytes of validation text scored, the same every time
EVAL_BATCH = 64
TIME_BUDGET = 60                          # seconds of training when the harness gives none
CHECKPOINT = "ckpt.pt"


def _load(path):
    return torch.frombuffer(bytearray(lzma.decompress(path.read_bytes())), dtype=torch.uint8)


def load_train():
    """The training text as a uint8 tensor (what train.py may read)."""
    return _load(TRAIN_FILE)


def load_val():
    """The held-out text (the evaluator's only: absent from the training run)."""
    return _load(VAL_FILE)


def time_budget():
    return float(os.environ.get("AUTORESEARCH_TIME_BUDGET", TIME_BUDGET))


def seed():
    return int(os.environ.get("AUTORESEARCH_SEED", "0"))


def max_steps():
    """Fixed-step mode: AUTORESEARCH_MAX_STEPS > 0 trains exactly that many steps."""
    return int(os.environ.get("AUTORESEARCH_MAX_STEPS", "0") or 0)


def threads():
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def peak_memory_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def report(summary):
    """Print karpathy's summary block and merge the values into the result file."""
    print("---")
    for key, value in summary.items():
        print(f"{key + ':':<20}{value:.6f}" if isinstance(value, float) else f"{key + ':':<20}{value}")
    path = os.environ.get("AUTORESEARCH_RESULT_FILE")
    if path:
        old = {}
        if os.path.exists(path):
            with open(path) as f:
                old = json.load(f)
        old.update(summary)
        with open(path, "w") as f:
            json.dump(old, f)


def eval_windows(val, n_tokens=EVAL_TOKENS, seq_len=MAX_SEQ_LEN):
    """(inputs, targets): n_tokens / seq_len windows spread evenly over the validation text."""
    n = n_tokens // seq_len
    stride = (len(val) - seq_len - 1) // n
    starts = torch.arange(n) * stride
    idx = starts[:, None] + torch.arange(seq_len + 1)[None, :]
    chunk = val[idx].long()
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def causality_violation(model, x, tol=1e-4):
    """A language model's prediction at position t may only depend on tokens <= t. Replace
    the second half of each window with other tokens: the logits of the first half must not
    change. Returns what leaked, or None."""
    half = x.shape[1] // 2
    g = torch.Generator().manual_seed(0)
    y = x.clone()
    y[:, half:] = torch.randint(0, VOCAB_SIZE, (x.shape[0], x.shape[1] - half), generator=g)
    a, b = model(x)[:, :half].double(), model(y)[:, :half].double()
    diff = _item((a - b).abs().max())
    scale = max(_item(a.abs().max()), 1e-9)
    if diff > tol * scale:
        pos = int(_item((a - b).abs().amax(dim=(0, 2)).nonzero()[0]))
        return (f"the model looks at future tokens: changing tokens {half}.. changed the logits at position {pos} "
                f"(max difference {diff:.3g})")
    return None


@torch.no_grad()
def evaluate(checkpoint=CHECKPOINT):
    t0 = time.time()
    torch.set_num_threads(threads())
    sys.path.insert(0, os.getcwd())
    import train  # the candidate's model code: the evaluator necessarily runs it

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = train.build_model(ckpt["config"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    val = load_val()
    x, y = eval_windows(val)
    leak = causality_violation(model, x[:4])
    if leak:
        report({"invalid": leak})
        raise SystemExit(f"invalid model: {leak}")
    total_nll, count = 0.0, 0
    for i in range(0, len(x), EVAL_BATCH):
        logits = model(x[i : i + EVAL_BATCH])
        if logits.shape != (len(x[i : i + EVAL_BATCH]), MAX_SEQ_LEN, VOCAB_SIZE):
            raise SystemExit(f"the model returned logits of shape {tuple(logits.shape)}, expected (B, {MAX_SEQ_LEN}, {VOCAB_SIZE})")
        logp = _log_softmax(_double(logits), dim=-1)
        total_nll += -_item(_sum(_gather(logp, -1, y[i : i + EVAL_BATCH, :, None])))
        count += _numel(y[i : i + EVAL_BATCH])
    val_bpb = total_nll / count / math.log(2)
    report({"val_bpb": val_bpb, "eval_tokens": count, "eval_seconds": time.time() - t0})


if __name__ == "__main__":
    if sys.argv[1:] == ["--eval"]:
        evaluate()
    else:
        train_data, val_data = load_train(), load_val()
        print(f"train: {len(train_data):,} bytes, val: {len(val_data):,} bytes, vocab {VOCAB_SIZE}")
