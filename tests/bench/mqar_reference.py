#!/usr/bin/python3
"""PyTorch reference of recipes/mqar.cpp's attention model and training loop (embedding, learned positions with
--positions, 2 x [LayerNorm, short causal depthwise conv, 1-head causal attention, residual, LayerNorm, GELU MLP x2,
residual],
AdamW wd 0.1 with 10% warm-up and cosine to 0, clip 1), on its own MQAR generator (Zoology's rule, zero fillers).
It is how the recipe's learning rates and step count were chosen: what this prints for a configuration is what the
recipe's attention row should show, up to seed-to-seed variation in the step at which recall is learned.

    /usr/bin/python3 tests/bench/mqar_reference.py --d 64 --L 128 --K 8 --lr 3e-3 --steps 1500 --seed 1

Benchmarks and references only: the library never depends on PyTorch.
"""
import argparse
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser(description="PyTorch reference of recipes/mqar.cpp's attention row")
p.add_argument('--d', type=int, default=64, help='model width')
p.add_argument('--L', type=int, default=64, help='sequence length')
p.add_argument('--K', type=int, default=4, help='key-value pairs')
p.add_argument('--steps', type=int, default=1500)
p.add_argument('--batch', type=int, default=32)
p.add_argument('--lr', type=float, default=3e-3)
p.add_argument('--V', type=int, default=256, help='vocabulary')
p.add_argument('--ntrain', type=int, default=20000, help='training set size')
p.add_argument('--conv', type=int, default=3, help='short convolution kernel (0: none)')
p.add_argument('--mlp', type=int, default=2, help='MLP width over model width (0: none)')
p.add_argument('--heads', type=int, default=1)
p.add_argument('--positions', action='store_true', help='learned absolute positions (the recipe\'s --positions)')
p.add_argument('--seed', type=int, default=0)
p.add_argument('--eval-every', type=int, default=100)
p.add_argument('--threads', type=int, default=1)
p.add_argument('--bench', type=int, default=0, help='time this many training steps (after 3 untimed) and print one '
               'JSON line, as `mqar --bench --threads 1`, instead of training')
a = p.parse_args()
torch.set_num_threads(a.threads)
def mqar(n, V, L, K, rng):
    keys = np.stack([rng.choice(np.arange(1, V//2), K, replace=False) for _ in range(n)])
    vals = np.stack([rng.choice(np.arange(V//2, V), K, replace=False) for _ in range(n)])
    space = (L - 2*K)//2
    pw = (np.arange(space)+1.0)**(0.01-1); pw /= pw.sum()
    seq = np.zeros((n, L+1), np.int64); lab = np.full((n, L+1), -100, np.int64)
    seq[:, 0:2*K:2] = keys; seq[:, 1:2*K:2] = vals
    for i in range(n):
        g = rng.choice(space, K, replace=False, p=pw)
        seq[i, 2*K+2*g] = keys[i]; lab[i, 2*K+2*g+1] = vals[i]
    return torch.tensor(seq[:, :L]), torch.tensor(lab[:, 1:])
rng = np.random.default_rng(a.seed)
xtr, ytr = mqar(a.ntrain, a.V, a.L, a.K, rng); xte, yte = mqar(500, a.V, a.L, a.K, rng)
torch.manual_seed(a.seed)


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.n1 = nn.LayerNorm(d)
        self.conv = nn.Conv1d(d, d, a.conv, groups=d, padding=a.conv - 1) if a.conv else None
        self.attn = nn.MultiheadAttention(d, a.heads, batch_first=True)
        self.n2 = nn.LayerNorm(d)
        self.f1 = nn.Linear(d, a.mlp * d) if a.mlp else None
        self.f2 = nn.Linear(a.mlp * d, d) if a.mlp else None

    def forward(self, x):
        T = x.shape[1]
        u = self.n1(x)
        if self.conv is not None:  # causal: pad both sides, keep the first T outputs
            u = self.conv(u.transpose(1, 2))[..., :T].transpose(1, 2)
        future = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        x = x + self.attn(u, u, u, attn_mask=future, need_weights=False)[0]
        if self.f1 is not None:
            x = x + self.f2(F.gelu(self.f1(self.n2(x))))
        return x


class LM(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.emb = nn.Embedding(a.V, d)
        self.pos = nn.Embedding(a.L, d) if a.positions else None
        self.blocks = nn.ModuleList([Block(d), Block(d)])
        self.n = nn.LayerNorm(d)
        self.head = nn.Linear(d, a.V)

    def forward(self, x, scored):
        """Logits at the scored positions only (a bool mask like x), as the recipe: the head runs where the loss is."""
        h = self.emb(x)
        if self.pos is not None:
            h = h + self.pos(torch.arange(x.shape[1]))
        for b in self.blocks:
            h = b(h)
        return self.head(self.n(h[scored]))


m = LM(a.d)
opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=0.1)
warm = max(1, a.steps//10)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s+1)/warm if s < warm else 0.5*(1+math.cos(math.pi*(s-warm)/max(1, a.steps-warm))))
def acc():
    m.eval()
    with torch.no_grad():
        msk = yte != -100
        r = (m(xte, msk).argmax(-1) == yte[msk]).float().mean().item()
    m.train(); return r
def train_step(idx):
    y = ytr[idx]
    scored = y != -100
    loss = F.cross_entropy(m(xtr[idx], scored), y[scored])
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); sched.step()
    return loss
if a.bench:
    idx = torch.arange(a.batch)
    for _ in range(3): train_step(idx)
    t0 = time.perf_counter()
    for _ in range(a.bench): train_step(idx)
    ms = 1000 * (time.perf_counter() - t0) / a.bench
    print(f'{{"peer": "torch", "workload": "mqar-attention-d{a.d}-L{a.L}", "ms_per_step": {ms:.3f}, '
          f'"tokens_per_s": {a.batch * a.L / ms * 1000:.1f}, "threads": {a.threads}}}')
    raise SystemExit
perm = torch.randperm(a.ntrain); nxt = 0; t0 = time.time()
for s in range(a.steps):
    if nxt + a.batch > a.ntrain: perm = torch.randperm(a.ntrain); nxt = 0
    idx = perm[nxt:nxt+a.batch]; nxt += a.batch
    loss = train_step(idx)
    if (s+1) % a.eval_every == 0 or s + 1 == a.steps: print(f"step {s+1} loss {loss.item():.3f} acc {acc():.3f} {time.time()-t0:.0f}s", flush=True)
