"""tiny-gpt, the editable part: a small GPT trained on bytes of Shakespeare for a fixed
time budget. Everything worth changing is here; the data and the evaluation live in
prepare.py and do not change. The evaluator rebuilds the model with build_model(config)
from the checkpoint this script saves, so keep that function's contract."""

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import prepare

# Model. Small enough that a 60 s CPU budget sees a few thousand steps.
DEPTH = 2              # transformer blocks
N_EMBD = 64            # width of the residual stream
N_HEAD = 4             # attention heads; N_EMBD must be divisible by it
DROPOUT = 0.0          # off: with one pass over a fraction of the data there is no overfitting to fight

# Optimisation. AdamW with the usual small-GPT settings (nanoGPT's character-level recipe).
BATCH_SIZE = 16        # sequences of prepare.MAX_SEQ_LEN bytes per step
LEARNING_RATE = 1e-3   # peak learning rate
WEIGHT_DECAY = 0.1     # on matrices only; embeddings, norms and biases are not decayed
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.99      # 0.99 rather than 0.999: few tokens per step, a shorter memory helps
GRAD_CLIP = 1.0        # global norm
WARMUP_RATIO = 0.02    # linear warmup over the first 2% of the budget
WARMDOWN_RATIO = 0.3   # linear decay to zero over the last 30% of the budget
MAX_STEPS = 0          # 0: train for the time budget; > 0: exactly this many steps (low noise)


class Block(nn.Module):
    def __init__(self, n_embd, n_head, dropout):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(n_embd)
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))
        self.drop = nn.Dropout(dropout)
        self.dropout = dropout

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))
        return x + self.drop(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    def __init__(self, vocab_size, seq_len, depth, n_embd, n_head, dropout):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, n_embd)
        self.pos = nn.Embedding(seq_len, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(depth))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.head.weight = self.tok.weight  # weight tying: fewer parameters, better small models
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))  # logits (B, T, vocab)


def build_model(config):
    """The contract with the evaluator: config dict (as saved in the checkpoint) -> model."""
    return GPT(**config)


def lr_at(progress):
    """Learning-rate multiplier for training progress in [0, 1] (time or steps)."""
    if WARMUP_RATIO > 0 and progress < WARMUP_RATIO:
        return progress / WARMUP_RATIO
    if WARMDOWN_RATIO > 0 and progress > 1 - WARMDOWN_RATIO:
        return max(0.0, (1 - progress) / WARMDOWN_RATIO)
    return 1.0


def main():
    t_start = time.time()
    torch.manual_seed(prepare.seed())
    torch.set_num_threads(prepare.threads())
    train_data = prepare.load_train()
    config = dict(vocab_size=prepare.VOCAB_SIZE, seq_len=prepare.MAX_SEQ_LEN, depth=DEPTH, n_embd=N_EMBD,
                  n_head=N_HEAD, dropout=DROPOUT)
    model = build_model(config)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "pos" not in n and "tok" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "pos" not in n and "tok" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LEARNING_RATE, betas=(ADAM_BETA1, ADAM_BETA2))
    gen = torch.Generator().manual_seed(prepare.seed())  # the data order depends on the seed only
    steps_wanted = prepare.max_steps() or MAX_STEPS
    budget = prepare.time_budget()
    T = prepare.MAX_SEQ_LEN

    model.train()
    t0 = time.time()
    step, loss_ema = 0, None
    # Progress for the harness's early stopping: the training loss (a proxy; the validation
    # text stays the evaluator's) every 5 % of the budget, as `progress: F train_loss: X`,
    # X the mean over the steps since the last report (a moving average would lag the run).
    reports, reported = 20, 0  # every 1/20 of the budget (counted in whole steps of it: no float drift)
    window_sum, window_n = 0.0, 0
    while True:
        elapsed = time.time() - t0
        progress = step / steps_wanted if steps_wanted else elapsed / budget
        if progress >= 1:
            break
        for group in opt.param_groups:
            group["lr"] = LEARNING_RATE * lr_at(progress)
        ix = torch.randint(len(train_data) - T - 1, (BATCH_SIZE,), generator=gen)
        chunk = torch.stack([train_data[i : i + T + 1] for i in ix.tolist()]).long()
        logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if GRAD_CLIP > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        step += 1
        loss_now = loss.item()
        loss_ema = loss_now if loss_ema is None else 0.98 * loss_ema + 0.02 * loss_now
        if not math.isfinite(loss_ema):
            raise SystemExit(f"training diverged at step {step} (loss {loss_ema})")
        window_sum, window_n = window_sum + loss_now, window_n + 1
        if int(progress * reports + 1e-9) > reported:
            print(f"progress: {progress:.3f} train_loss: {window_sum / window_n:.4f}", flush=True)
            window_sum, window_n = 0.0, 0
            reported = int(progress * reports + 1e-9)
        if step % 200 == 0:
            print(f"step {step:05d} ({100 * progress:.1f}%) | loss: {loss_ema:.4f} | lr: {opt.param_groups[0]['lr']:.2e}")

    training_seconds = time.time() - t0
    torch.save({"config": config, "model": model.state_dict()}, prepare.CHECKPOINT)
    prepare.report({
        "training_seconds": training_seconds,
        "total_seconds": time.time() - t_start,
        "peak_memory_mb": prepare.peak_memory_mb(),
        "num_steps": step,
        "num_params_M": n_params / 1e6,
        "train_loss": loss_ema if loss_ema is not None else float("nan"),
        "depth": DEPTH,
    })


if __name__ == "__main__":
    main()
