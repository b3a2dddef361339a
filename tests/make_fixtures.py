#!/usr/bin/python3
"""Writes the PyTorch reference fixtures that tests/test_parity.cpp and tests/test_io.cpp compare against.

Run with Debian's PyTorch:  /usr/bin/python3 tests/make_fixtures.py
Output: tests/fixtures/<family>.safetensors and tests/fixtures/np_*.npy (the .npy ones come from numpy.save).

Each case NAME stores its inputs as "NAME.<input>", the forward output as "NAME.out" (extra outputs, such as
max's indices, as "NAME.out1", ...), and, when the first output is floating, a fixed random weight "NAME.w" and the
gradients of (out * w).sum() with respect to each floating input as "NAME.grad.<input>". Floats are float64,
indices int64, masks bool. The C++ side maps NAME (up to an optional "@variant" suffix) to the tapegrad op.
"""
import json
import math
import os
import struct
import warnings

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "fixtures")
D = torch.float64

torch.manual_seed(0)
np.random.seed(0)

ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64", torch.bool: "BOOL"}


def write_safetensors(path, tensors, metadata=None):
    """A minimal safetensors writer: u64 header length, JSON header padded to 8 bytes, data in name order."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


class Family:
    """Collects the cases of one fixture file."""

    def __init__(self, name):
        self.name, self.tensors = name, {}

    def case(self, name, fn, **inputs):
        assert not any(k.startswith(name + ".") for k in self.tensors), name
        assert "w" not in inputs, "an input named 'w' would collide with the output weight"
        leaves = {k: v.detach().clone().requires_grad_(v.is_floating_point()) for k, v in inputs.items()}
        out = fn(**leaves)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        for k, v in inputs.items():
            self.tensors[f"{name}.{k}"] = v
        for i, o in enumerate(outs):
            self.tensors[f"{name}.out" + (str(i) if i else "")] = o.detach()
        if outs[0].is_floating_point():
            w = torch.randn(outs[0].shape, dtype=D)
            (outs[0] * w).sum().backward()
            self.tensors[f"{name}.w"] = w
            for k, v in leaves.items():
                if v.grad is not None:
                    self.tensors[f"{name}.grad.{k}"] = v.grad

    def write(self):
        path = os.path.join(OUT_DIR, self.name + ".safetensors")
        write_safetensors(path, self.tensors, {"generator": "tests/make_fixtures.py", "torch": torch.__version__})
        return path


def randn(*s):
    return torch.randn(*s, dtype=D)


def positive(*s):
    return torch.rand(*s, dtype=D) + 0.2


def unary():
    fam = Family("unary")
    ops = {  # name -> (function, input domain)
        "neg": (torch.neg, randn), "exp": (torch.exp, randn), "log": (torch.log, positive),
        "sqrt": (torch.sqrt, positive), "rsqrt": (torch.rsqrt, positive), "abs": (torch.abs, randn),
        "tanh": (torch.tanh, randn), "sigmoid": (torch.sigmoid, randn), "relu": (torch.relu, randn),
        "gelu": (F.gelu, randn), "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), randn),
        "silu": (F.silu, randn), "softplus": (F.softplus, randn),
        "softplus_beta2": (lambda x: F.softplus(x, beta=2.0, threshold=5.0), lambda *s: randn(*s) * 4),
        "square": (torch.square, randn), "pow_scalar": (lambda x: torch.pow(x, 2.5), positive),
        "clamp": (lambda x: torch.clamp(x, -0.5, 0.5), randn), "clamp_min": (lambda x: torch.clamp(x, min=-0.3), randn),
        "clamp_max": (lambda x: torch.clamp(x, max=0.3), randn), "sin": (torch.sin, randn), "cos": (torch.cos, randn),
    }
    for name, (fn, domain) in ops.items():
        fam.case(name, lambda x, fn=fn: fn(x), x=domain(4, 5))
    for name in ("exp", "tanh", "gelu", "sqrt"):  # 0-d and size-0 inputs
        fn, domain = ops[name]
        fam.case(name + "@0d", lambda x, fn=fn: fn(x), x=domain(()))
        fam.case(name + "@empty", lambda x, fn=fn: fn(x), x=domain(0, 3))
    return fam


def binary():
    fam = Family("binary")
    a, b = randn(3, 1, 4), randn(2, 4)
    ops = {
        "add": (torch.add, a, b), "sub": (torch.sub, a, b), "mul": (torch.mul, a, b),
        "div": (torch.div, a, torch.rand(2, 4, dtype=D) + 0.5), "pow": (torch.pow, positive(3, 1, 4), b),
        "maximum": (torch.maximum, a, b), "minimum": (torch.minimum, a, b),
    }
    for name, (fn, x, y) in ops.items():
        fam.case(name, lambda a, b, fn=fn: fn(a, b), a=x, b=y)
    fam.case("mul@0d", lambda a, b: a * b, a=randn(2, 3), b=randn(()))
    fam.case("add@empty", lambda a, b: a + b, a=randn(0, 4), b=randn(4))
    fam.case("where", lambda cond, a, b: torch.where(cond, a, b), cond=torch.rand(2, 4) > 0.5, a=randn(3, 1, 4), b=randn(4))
    fam.case("masked_fill", lambda x, mask: x.masked_fill(mask, -1.5), x=randn(3, 4), mask=torch.rand(4) > 0.5)
    ints_a, ints_b = torch.randint(0, 3, (3, 4)).to(D), torch.randint(0, 3, (4,)).to(D)
    fam.case("lt", lambda a, b: torch.lt(a, b), a=ints_a, b=ints_b)
    fam.case("eq", lambda a, b: torch.eq(a, b), a=ints_a, b=ints_b)
    return fam


def reduce():
    fam = Family("reduce")
    x = randn(3, 4, 5)
    for op in ("sum", "mean"):
        fam.case(op + "_all", lambda x, op=op: getattr(torch, op)(x), x=x)
        for dims, tag in (((1,), "d1"), ((0, 2), "d02")):
            for keep in (False, True):
                fam.case(f"{op}_{tag}{'_keep' if keep else ''}",
                         lambda x, op=op, dims=dims, keep=keep: getattr(torch, op)(x, dims, keepdim=keep), x=x)
    fam.case("max_d1", lambda x: torch.max(x, 1), x=x)
    fam.case("max_d1_keep", lambda x: torch.max(x, 1, keepdim=True), x=x)
    fam.case("min_d1", lambda x: torch.min(x, 1), x=x)
    fam.case("max_all", lambda x: torch.max(x), x=x)
    fam.case("argmax_all", lambda x: torch.argmax(x), x=x)
    fam.case("argmax_d1", lambda x: torch.argmax(x, 1), x=x)
    fam.case("var_d1_c1", lambda x: torch.var(x, 1, unbiased=True), x=x)
    fam.case("var_d1_c0", lambda x: torch.var(x, 1, unbiased=False), x=x)
    fam.case("var_d02_c1_keep", lambda x: torch.var(x, (0, 2), unbiased=True, keepdim=True), x=x)
    fam.case("logsumexp_dlast", lambda x: torch.logsumexp(x, -1), x=x)
    fam.case("cumsum_d1", lambda x: torch.cumsum(x, 1), x=x)
    for dim, tag in ((-1, "dlast"), (0, "d0")):
        fam.case("softmax_" + tag, lambda x, dim=dim: torch.softmax(x, dim), x=x)
        fam.case("log_softmax_" + tag, lambda x, dim=dim: torch.log_softmax(x, dim), x=x)
    return fam


def matmul():
    fam = Family("matmul")
    mm = lambda a, b: torch.matmul(a, b)  # noqa: E731
    fam.case("matmul_2d", mm, a=randn(3, 4), b=randn(4, 5))
    fam.case("mm", lambda a, b: torch.mm(a, b), a=randn(3, 4), b=randn(4, 5))
    fam.case("bmm", lambda a, b: torch.bmm(a, b), a=randn(2, 3, 4), b=randn(2, 4, 5))
    fam.case("matmul_batched", mm, a=randn(2, 3, 4), b=randn(4, 5))
    fam.case("matmul_bcast", mm, a=randn(2, 1, 3, 4), b=randn(5, 4, 2))
    fam.case("matmul_1d_2d", mm, a=randn(4), b=randn(4, 5))
    fam.case("matmul_2d_1d", mm, a=randn(3, 4), b=randn(4))
    fam.case("matmul_1d_1d", mm, a=randn(4), b=randn(4))
    fam.case("outer", lambda a, b: torch.outer(a, b), a=randn(3), b=randn(4))
    return fam


def index():
    fam = Family("index")
    fam.case("index_select_d0", lambda x, idx: torch.index_select(x, 0, idx), x=randn(5, 3), idx=torch.tensor([0, 2, 2, 4]))
    fam.case("index_select_d1", lambda x, idx: torch.index_select(x, 1, idx), x=randn(2, 3), idx=torch.tensor([1, 0, 1, 2, 0]))
    fam.case("gather_d1", lambda x, idx: torch.gather(x, 1, idx), x=randn(3, 4), idx=torch.randint(0, 4, (3, 2)))
    fam.case("gather_d0", lambda x, idx: torch.gather(x, 0, idx), x=randn(3, 4), idx=torch.randint(0, 3, (2, 4)))
    fam.case("scatter_add_d1", lambda x, idx, src: torch.scatter_add(x, 1, idx, src), x=randn(3, 5),
             idx=torch.randint(0, 5, (3, 4)), src=randn(3, 4))
    fam.case("index_add_d0", lambda x, idx, src: torch.index_add(x, 0, idx, src), x=randn(5, 3),
             idx=torch.tensor([4, 0, 4, 1]), src=randn(4, 3))
    fam.case("embedding", lambda weight, idx: F.embedding(idx, weight), weight=randn(6, 3),
             idx=torch.tensor([[0, 5, 2, 5], [1, 1, 3, 0]]))
    fam.case("one_hot", lambda idx: F.one_hot(idx, 4), idx=torch.tensor([0, 3, 1, 1, 2]))
    fam.case("one_hot@auto", lambda idx: F.one_hot(idx), idx=torch.tensor([[0, 2], [4, 1]]))
    fam.case("cat_d0", lambda a, b: torch.cat([a, b], 0), a=randn(2, 3), b=randn(4, 3))
    fam.case("cat_d1", lambda a, b, c: torch.cat([a, b, c], 1), a=randn(2, 3), b=randn(2, 1), c=randn(2, 2))
    for dim in (0, 1, -1):
        fam.case(f"stack_d{dim}", lambda a, b, c, dim=dim: torch.stack([a, b, c], dim), a=randn(2, 3), b=randn(2, 3),
                 c=randn(2, 3))
    for op in ("tril", "triu"):
        for diag in (-1, 0, 1):
            fam.case(f"{op}_{diag}", lambda x, op=op, diag=diag: getattr(torch, op)(x, diag), x=randn(4, 5))
    return fam


def nn_fixtures():
    """tests/test_nn_parity.cpp: layers (their parameters stored under their state_dict names, so the C++ side loads
    them with load_state_dict) and the losses. Seeded on its own, so adding cases here leaves the other files alone."""
    torch.manual_seed(4)
    fam = Family("nn")

    def module_case(name, m, **inputs):
        m = m.double()
        for k, p in m.named_parameters():  # non-trivial affine parameters, so that their gradients mean something
            if "norm" in name:
                p.data = randn(*p.shape)
        params = dict(m.named_parameters())

        def fn(**kw):
            for k in params:  # run the module with the case's leaf tensors as its parameters
                mod, _, attr = k.rpartition(".")
                owner = m.get_submodule(mod) if mod else m
                delattr(owner, attr)
                setattr(owner, attr, kw.pop(k))
            return m(**kw)

        fam.case(name, fn, **inputs, **{k: p.detach().clone() for k, p in params.items()})

    module_case("linear", torch.nn.Linear(4, 5), input=randn(2, 3, 4))
    module_case("linear_nobias", torch.nn.Linear(4, 2, bias=False), input=randn(3, 4))
    module_case("mlp", torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)), input=randn(5, 4))
    module_case("embedding", torch.nn.Embedding(6, 3), input=torch.tensor([[0, 5, 2, 5], [1, 1, 3, 0]]))
    module_case("embedding_pad", torch.nn.Embedding(6, 3, padding_idx=1), input=torch.tensor([[0, 1, 2, 1], [1, 4, 3, 0]]))
    module_case("layer_norm", torch.nn.LayerNorm(5), input=randn(2, 3, 5))
    module_case("layer_norm_2d", torch.nn.LayerNorm([3, 5], eps=1e-3), input=randn(2, 3, 5))
    module_case("conv1d", torch.nn.Conv1d(4, 6, 3, padding=1), input=randn(2, 4, 7))
    module_case("conv1d_strided", torch.nn.Conv1d(4, 3, 3, stride=2, dilation=2, padding=2), input=randn(2, 4, 9))
    module_case("conv1d_groups", torch.nn.Conv1d(4, 6, 3, groups=2), input=randn(2, 4, 6))
    module_case("conv1d_unbatched", torch.nn.Conv1d(3, 2, 2, bias=False), input=randn(3, 5))
    # The causal depthwise convolution of Mamba: pad k - 1 on both sides, keep the first L outputs.
    dw = torch.nn.Conv1d(4, 4, 3, groups=4, padding=2).double()
    fam.case("conv1d_causal_depthwise", lambda x, weight, bias: F.conv1d(x, weight, bias, padding=2, groups=4)[..., :6],
             x=randn(2, 4, 6), weight=dw.weight.detach().clone(), bias=dw.bias.detach().clone())

    def rms_norm(x, weight, eps):  # torch.nn.RMSNorm (PyTorch >= 2.4) written out for 1.13
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
    fam.case("rms_norm", lambda x, weight: rms_norm(x, weight, 1e-6), x=randn(3, 6), weight=randn(6))
    fam.case("rms_norm@eps_default", lambda x, weight: rms_norm(x, weight, torch.finfo(D).eps), x=randn(2, 3, 4),
             weight=randn(4))

    targets = torch.tensor([3, 0, -100, 6, 2])
    logits = randn(5, 7) * 2
    for red in ("mean", "sum", "none"):
        fam.case("cross_entropy_" + red, lambda x, t, red=red: F.cross_entropy(x, t, reduction=red), x=logits, t=targets)
        fam.case("cross_entropy_smooth_" + red,
                 lambda x, t, red=red: F.cross_entropy(x, t, reduction=red, label_smoothing=0.1), x=logits, t=targets)
    fam.case("cross_entropy_ignore2", lambda x, t: F.cross_entropy(x, t, ignore_index=2, label_smoothing=0.25),
             x=logits, t=torch.tensor([3, 2, 1, 6, 2]))
    fam.case("cross_entropy_kdim", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), x=randn(2, 4, 3),
             t=torch.tensor([[0, 3, -100], [2, 1, 1]]))
    fam.case("cross_entropy_unbatched", lambda x, t: F.cross_entropy(x, t), x=randn(7), t=torch.tensor(4))
    for red in ("mean", "none"):
        fam.case("nll_loss_" + red, lambda x, t, red=red: F.nll_loss(x, t, reduction=red),
                 x=torch.log_softmax(randn(5, 7), -1), t=targets)
    for red in ("mean", "sum", "none"):
        fam.case("mse_loss_" + red, lambda a, b, red=red: F.mse_loss(a, b, reduction=red), a=randn(3, 4), b=randn(3, 4))
    big = randn(4, 3) * 3
    big[0, 0], big[1, 1] = 40.0, -40.0  # the stable form must stay finite and exact here
    y = torch.rand(4, 3, dtype=D)
    fam.case("bce_logits", lambda x, y: F.binary_cross_entropy_with_logits(x, y), x=big, y=y)
    fam.case("bce_logits_weights", lambda x, y, weight, pos_weight: F.binary_cross_entropy_with_logits(
        x, y, weight=weight.detach(), pos_weight=pos_weight.detach(), reduction="sum"), x=big, y=y,
        weight=torch.rand(4, 3, dtype=D), pos_weight=torch.rand(3, dtype=D) + 0.5)
    return fam


class CosineDecay:
    """SPAM's warm-up helper (galore_torch/SPAM.py): a CosineAnnealingLR(T_max = N + 1) queried at an explicit step."""

    def __init__(self, death_rate, t_max, eta_min=0.0):
        self.sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=death_rate)
        self.stepper = torch.optim.lr_scheduler.CosineAnnealingLR(self.sgd, t_max + 1, eta_min)
        self.t_max, self.eta_min = t_max, eta_min

    def get_dr(self, current_step):
        if current_step >= self.t_max:
            return self.eta_min
        with warnings.catch_warnings():  # step(epoch) is deprecated, and is what the official code calls
            warnings.simplefilter("ignore")
            self.stepper.step(current_step)
        return self.sgd.param_groups[0]["lr"]


class SpamReference(torch.optim.Optimizer):
    """SPAM (Huang et al. 2025) transcribed from the official galore_torch/SPAM.py, dense path (no density masks).

    Global total_step and current_step (starting at N + 1); moments zeroed at 1-based steps DeltaT, 2 DeltaT, ...
    without resetting the per-parameter step; spike clipping against the raw previous exp_avg_sq, skipped in the first
    grad_accu_steps steps and as many after each reset; eps outside sqrt(v); decoupled decay with the plain lr."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True,
                 warmup_steps=150, threshold=5000, DeltaT=500, grad_accu_steps=20):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias))
        self.warmup = CosineDecay(0.99, warmup_steps)
        self.threshold, self.DeltaT, self.grad_accu_steps = threshold, DeltaT, grad_accu_steps
        self.total_step, self.current_step = 0, warmup_steps + 1
        self.scales, self.clipped = [], []  # per step, for the tests

    @torch.no_grad()
    def step(self):
        scale_factor = 1 - self.warmup.get_dr(self.current_step)
        self.scales.append(scale_factor)
        clipped = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                if (self.total_step + 1) % self.DeltaT == 0:
                    state["exp_avg"] = torch.zeros_like(grad)
                    state["exp_avg_sq"] = torch.zeros_like(grad)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                if self.threshold != 0:
                    current_step = self.total_step + 1
                    if current_step >= self.grad_accu_steps and current_step % self.DeltaT >= self.grad_accu_steps:
                        mask = (grad ** 2) > (self.threshold * exp_avg_sq)
                        clipped += int(mask.sum())
                        grad[mask] = grad[mask].sign() * torch.sqrt(exp_avg_sq[mask] * self.threshold)
                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                step_size = group["lr"]
                if group["correct_bias"]:
                    bias_correction1 = 1.0 - beta1 ** state["step"]
                    bias_correction2 = 1.0 - beta2 ** state["step"]
                    step_size *= math.sqrt(bias_correction2) / bias_correction1
                norm_grad = exp_avg / denom
                p.add_(norm_grad, alpha=-step_size * scale_factor)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=(-group["lr"] * group["weight_decay"]))
        self.clipped.append(clipped)
        self.total_step += 1
        self.current_step += 1
        if self.total_step != 0 and (self.total_step + 1) % self.DeltaT == 0:
            self.current_step = 0


def optim_fixtures():
    """tests/test_optim_parity.cpp: optimizer trajectories over 100 steps of fixed gradients (params [2, 3] and [3]),
    from torch.optim and from SpamReference, with schedules and gradient clipping. Keys:
      seq.<dt>.init.<k>, seq.<dt>.grads.<k> [100, ...]   the shared start and gradients (dt f32 / f64)
      <case>.final.<k>, <case>.step<s>.<k>               params after 100 steps and after step s (1, 2, 50)
      spam*.scale, spam*.clipped                         SPAM's warm-up factor and clipped-element count per step
    Seeded on its own generator, so it leaves the other fixture files alone."""
    gen = torch.Generator().manual_seed(2025)
    steps, shapes, keep = 100, [(2, 3), (3,)], (1, 2, 50)
    fam = Family("optim")
    t = fam.tensors
    seqs = {}
    for tag, dt in (("f32", torch.float32), ("f64", torch.float64)):
        init = [torch.randn(s, generator=gen, dtype=torch.float64).to(dt) for s in shapes]
        grads = [torch.randn((steps,) + s, generator=gen, dtype=torch.float64).to(dt) for s in shapes]
        seqs[tag] = (init, grads)
        for k in range(len(shapes)):
            t[f"seq.{tag}.init.{k}"], t[f"seq.{tag}.grads.{k}"] = init[k], grads[k]
    # SPAM's gradients: the f32 sequence with spikes (x60 on a few elements) that its clipping must catch.
    spiky = [g.clone() for g in seqs["f32"][1]]
    for step, k, idx in ((30, 0, (1, 2)), (31, 1, (0,)), (57, 0, (0, 1)), (63, 1, (2,)), (90, 0, (1, 0))):
        spiky[k][(step,) + idx] *= 60
    seqs["spiky"] = (seqs["f32"][0], spiky)
    for k in range(len(shapes)):
        t[f"seq.spiky.grads.{k}"] = spiky[k]

    def run(name, make, seq="f32", groups=None):
        init, grads = seqs[seq]
        params = [p.clone().requires_grad_() for p in init]
        opt = make(params if groups is None else groups(params))
        for s in range(steps):
            for p, g in zip(params, grads):
                p.grad = g[s].clone()  # a copy: SPAM's clipping writes into p.grad
            opt.step()
            if s + 1 in keep:
                for k, p in enumerate(params):
                    t[f"{name}.step{s + 1}.{k}"] = p.detach().clone()
        for k, p in enumerate(params):
            t[f"{name}.final.{k}"] = p.detach().clone()
        return opt

    O = torch.optim
    run("sgd", lambda ps: O.SGD(ps, lr=0.1))
    run("sgd_momentum", lambda ps: O.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01))
    run("sgd_nesterov", lambda ps: O.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3))
    run("adam", lambda ps: O.Adam(ps, lr=0.01))
    run("adam_l2_amsgrad", lambda ps: O.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True))
    run("adamw", lambda ps: O.AdamW(ps, lr=0.01, weight_decay=0.1))
    run("adamw_groups", lambda gs: O.AdamW(gs, lr=0.01, weight_decay=0.1),
        groups=lambda ps: [{"params": [ps[0]], "lr": 0.02}, {"params": [ps[1]], "weight_decay": 0.0}])
    run("adam_f64", lambda ps: O.Adam(ps, lr=0.01, weight_decay=0.01), seq="f64")
    run("sgd_momentum_f64", lambda ps: O.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01), seq="f64")
    for name, kw in (("spam", dict(lr=0.01, DeltaT=40, warmup_steps=10, threshold=100, weight_decay=0.05)),
                     ("spam_defaults", dict(lr=0.01))):
        opt = run(name, lambda ps, kw=kw: SpamReference(ps, **kw), seq="spiky")
        t[name + ".scale"] = torch.tensor(opt.scales, dtype=torch.float64)
        t[name + ".clipped"] = torch.tensor(opt.clipped, dtype=torch.int64)

    # Schedules: the lr (and momentum) that torch.optim.lr_scheduler sets after construction and after each step.
    def schedule(name, opt, sched, n, momentum=None):
        lrs, moms = [], []
        for s in range(n):
            lrs.append(opt.param_groups[0]["lr"])
            if momentum:
                moms.append(momentum(opt.param_groups[0]))
            if s + 1 < n:
                opt.step()
                sched.step()
        t[f"sched.{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
        if momentum:
            t[f"sched.{name}.momentum"] = torch.tensor(moms, dtype=torch.float64)

    w = [torch.nn.Parameter(torch.zeros(1))]
    opt = O.SGD(w, lr=0.1, momentum=0.9)
    schedule("onecycle_sgd", opt, O.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100), 100,
             lambda g: g["momentum"])
    opt = O.Adam(w, lr=1e-3)
    schedule("onecycle_adam", opt, O.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=37, pct_start=0.25), 37,
             lambda g: g["betas"][0])
    opt = O.SGD(w, lr=0.1)
    schedule("steplr", opt, O.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5), 30)

    # clip_grad_norm_ over two gradients, per norm type and max_norm (the last one does not clip).
    g0, g1 = torch.randn(3, 4, generator=gen, dtype=D), torch.randn(5, generator=gen, dtype=D)
    t["clip.g.0"], t["clip.g.1"] = g0, g1
    for tag, norm, max_norm in (("l2", 2.0, 1.0), ("l1", 1.0, 2.0), ("inf", math.inf, 0.5), ("l3", 3.0, 0.7),
                                ("l2_noclip", 2.0, 100.0)):
        ps = [torch.zeros(3, 4, dtype=D, requires_grad=True), torch.zeros(5, dtype=D, requires_grad=True)]
        ps[0].grad, ps[1].grad = g0.clone(), g1.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm)
        t[f"clip.{tag}.total"] = total.detach().clone()
        t[f"clip.{tag}.out.0"], t[f"clip.{tag}.out.1"] = ps[0].grad, ps[1].grad
    return fam


def rnn_fixtures():
    """tests/test_rnn_parity.cpp: torch.nn.RNN/LSTM/GRU and their cells. Per case NAME: the module's parameters
    under their state_dict names, "input" (and "h0", "c0", "lengths" when given), outputs "out" = cat of the
    flattened (y, h_n[, c_n]) and "out1".. = y, h_n, c_n, and the gradients of (out * w).sum() for the input, the
    initial state and every parameter. Packed cases run pack_padded_sequence/pad_packed_sequence with "lengths".
    Seeded on its own generator, so it leaves the other fixture files alone."""
    torch.manual_seed(5)
    fam = Family("rnn")
    t = fam.tensors
    rnnu = torch.nn.utils.rnn

    def case(name, m, x, state=None, lengths=None, cell=False):
        m = m.double()
        leaves = {"input": x.clone().requires_grad_()}
        if state is not None:
            for k, v in zip(("h0", "c0"), state if isinstance(state, tuple) else (state,)):
                leaves[k] = v.clone().requires_grad_()
        st = tuple(leaves[k] for k in ("h0", "c0") if k in leaves)
        st = None if not st else st if len(st) > 1 else st[0]
        if cell:
            r = m(leaves["input"], st)
            outs = r if isinstance(r, tuple) else (r,)
        else:
            inp = leaves["input"]
            if lengths is not None:
                inp = rnnu.pack_padded_sequence(inp, lengths, batch_first=m.batch_first, enforce_sorted=False)
            y, hn = m(inp, st)
            if lengths is not None:
                y = rnnu.pad_packed_sequence(y, batch_first=m.batch_first, total_length=x.shape[1 if m.batch_first else 0])[0]
            outs = (y,) + (hn if isinstance(hn, tuple) else (hn,))
        out = torch.cat([o.reshape(-1) for o in outs])
        w = torch.randn(out.shape, dtype=D)
        (out * w).sum().backward()
        for k, v in leaves.items():
            t[f"{name}.{k}"] = v.detach().clone()
            t[f"{name}.grad.{k}"] = v.grad
        for k, p in m.named_parameters():
            t[f"{name}.{k}"] = p.detach().clone()
            t[f"{name}.grad.{k}"] = p.grad
        if lengths is not None:
            t[f"{name}.lengths"] = lengths
        t[f"{name}.out"], t[f"{name}.w"] = out.detach(), w
        for i, o in enumerate(outs):
            t[f"{name}.out{i + 1}"] = o.detach()

    nn_ = torch.nn
    case("lstm", nn_.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True), randn(2, 5, 3),
         (randn(4, 2, 4), randn(4, 2, 4)))
    case("lstm_zero_state", nn_.LSTM(3, 5), randn(4, 2, 3))
    case("lstm_unbatched", nn_.LSTM(3, 4, num_layers=2), randn(5, 3), (randn(2, 4), randn(2, 4)))
    case("gru", nn_.GRU(3, 4, num_layers=2, bidirectional=True), randn(5, 2, 3), randn(4, 2, 4))
    case("gru_nobias", nn_.GRU(3, 4, bias=False, batch_first=True), randn(2, 4, 3), randn(1, 2, 4))
    case("rnn_tanh", nn_.RNN(3, 4, num_layers=2), randn(5, 2, 3), randn(2, 2, 4))
    case("rnn_relu", nn_.RNN(3, 4, nonlinearity="relu", bidirectional=True, batch_first=True), randn(3, 4, 3),
         randn(2, 3, 4))
    lengths = torch.tensor([5, 2, 4])
    case("lstm_packed", nn_.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True), randn(3, 5, 3),
         (randn(4, 3, 4), randn(4, 3, 4)), lengths=lengths)
    case("gru_packed", nn_.GRU(3, 4, bidirectional=True), randn(5, 3, 3), randn(2, 3, 4), lengths=lengths)
    case("rnn_packed", nn_.RNN(3, 4), randn(5, 3, 3), lengths=torch.tensor([1, 5, 3]))
    case("lstm_cell", nn_.LSTMCell(3, 4), randn(2, 3), (randn(2, 4), randn(2, 4)), cell=True)
    case("gru_cell", nn_.GRUCell(3, 4), randn(2, 3), randn(2, 4), cell=True)
    case("rnn_cell", nn_.RNNCell(3, 4), randn(2, 3), randn(2, 4), cell=True)
    case("rnn_cell_relu_nobias", nn_.RNNCell(3, 4, bias=False, nonlinearity="relu"), randn(2, 3), cell=True)
    return fam


def linear_attention_fixtures():
    """tests/test_nn_linear_attention_parity.cpp: the linear-attention family written from the papers' equations,
    one step at a time. "la": Katharopoulos et al. 2020 with phi = elu + 1 on raw q, k. "gla": Yang et al. 2023,
    S_t = Diag(alpha_t) S_{t-1} + k_t^T v_t, o_t = (q_t d_k^-1/2) S_t with log alpha = logsigmoid(g) / 16 and an
    initial state s0; out = cat(flat o, flat S_T), out1 = o, out2 = S_T. "aaren": Feeney et al. 2024, causal
    softmax attention of a constant query with scores s. Seeded on its own, so the other files stay unchanged."""
    torch.manual_seed(6)
    fam = Family("linear_attention")

    def la(q, k, v):
        q, k = F.elu(q) + 1, F.elu(k) + 1
        S = torch.zeros(q.shape[0], q.shape[1], q.shape[3], v.shape[3], dtype=D)
        z = torch.zeros(q.shape[0], q.shape[1], q.shape[3], dtype=D)
        ys = []
        for t in range(q.shape[2]):
            S = S + k[:, :, t, :, None] * v[:, :, t, None, :]
            z = z + k[:, :, t]
            num = torch.einsum("bhk,bhkv->bhv", q[:, :, t], S)
            ys.append(num / ((q[:, :, t] * z).sum(-1, keepdim=True) + 1e-6))
        return torch.stack(ys, 2)

    def gla(q, k, v, g, s0):
        alpha = torch.exp(F.logsigmoid(g) / 16)
        S, os_ = s0, []
        for t in range(q.shape[2]):
            S = alpha[:, :, t, :, None] * S + k[:, :, t, :, None] * v[:, :, t, None, :]
            os_.append(torch.einsum("bhk,bhkv->bhv", q[:, :, t] * q.shape[3] ** -0.5, S))
        o = torch.stack(os_, 2)
        return torch.cat([o.reshape(-1), S.reshape(-1)]), o, S

    def aaren(s, v):
        T = s.shape[2]
        scores = s[:, :, None, :].expand(-1, -1, T, -1)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        return torch.softmax(scores.masked_fill(mask, float("-inf")), -1) @ v

    fam.case("la", la, q=randn(2, 2, 7, 3), k=randn(2, 2, 7, 3), v=randn(2, 2, 7, 4))
    fam.case("gla", gla, q=randn(2, 2, 7, 4), k=randn(2, 2, 7, 4), v=randn(2, 2, 7, 3), g=randn(2, 2, 7, 4) * 4,
             s0=randn(2, 2, 4, 3))
    fam.case("aaren", aaren, s=randn(2, 3, 9) * 3, v=randn(2, 3, 9, 4))
    return fam


def attention_fixtures():
    """tests/test_attention_parity.cpp: scaled dot-product attention written out as softmax(q k^T * scale + mask) v
    (PyTorch 1.13 has no F.scaled_dot_product_attention), with a bool mask meaning "attend" as in PyTorch 2's SDPA,
    and torch.nn.MultiheadAttention (need_weights=False) with its parameters as "param.<state_dict name>".
    Seeded on its own, so it leaves the other fixture files alone."""
    torch.manual_seed(6)
    fam = Family("attention")

    def sdpa(q, k, v, mask=None, causal=False, scale=None):
        s = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
        if causal:
            s = s.masked_fill(torch.ones(s.shape[-2], s.shape[-1], dtype=torch.bool).triu(1), float("-inf"))
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask
        return s.softmax(-1) @ v

    fam.case("sdpa", lambda q, k, v: sdpa(q, k, v), q=randn(2, 3, 4, 5), k=randn(2, 3, 6, 5), v=randn(2, 3, 6, 3))
    fam.case("sdpa_causal", lambda q, k, v: sdpa(q, k, v, causal=True), q=randn(1, 2, 5, 4), k=randn(1, 2, 5, 4),
             v=randn(1, 2, 5, 4))
    bool_mask = torch.rand(4, 6) > 0.4
    bool_mask[:, 0] = True
    fam.case("sdpa_bool_mask", lambda q, k, v, mask: sdpa(q, k, v, mask), q=randn(2, 2, 4, 3), k=randn(2, 2, 6, 3),
             v=randn(2, 2, 6, 3), mask=bool_mask)
    fam.case("sdpa_float_mask", lambda q, k, v, mask: sdpa(q, k, v, mask.detach(), scale=0.3), q=randn(2, 2, 4, 3),
             k=randn(2, 2, 6, 3), v=randn(2, 2, 6, 2), mask=randn(2, 1, 4, 6))

    def mha_case(name, m, **inputs):
        m = m.double()
        params = {k: p.detach().clone() for k, p in m.named_parameters()}

        def fn(**kw):
            for k in params:
                mod, _, attr = k.rpartition(".")
                owner = m.get_submodule(mod) if mod else m
                delattr(owner, attr)
                setattr(owner, attr, kw.pop("param." + k))
            if "attn_mask" in kw:  # a mask takes no gradient here (tapegrad's attention does not send one)
                kw["attn_mask"] = kw["attn_mask"].detach()
            return m(**kw, need_weights=False)[0]

        # "param." keeps out_proj.* apart from the case's outputs ("out", "out1", ...)
        fam.case(name, fn, **inputs, **{"param." + k: p for k, p in params.items()})

    x = randn(5, 2, 8)
    mha_case("mha_self", torch.nn.MultiheadAttention(8, 2), query=x, key=x, value=x)
    kpm = torch.tensor([[False, False, True, False], [False, True, True, False]])
    am = torch.rand(3, 4) > 0.8
    am[:, 0] = False
    mha_case("mha_cross_batch_first", torch.nn.MultiheadAttention(6, 3, batch_first=True), query=randn(2, 3, 6),
             key=randn(2, 4, 6), value=randn(2, 4, 6), key_padding_mask=kpm, attn_mask=am)
    mha_case("mha_nobias_float_mask", torch.nn.MultiheadAttention(4, 1, bias=False), query=randn(3, 2, 4),
             key=randn(5, 2, 4), value=randn(5, 2, 4), attn_mask=randn(3, 5))
    return fam


def moe_fixtures():
    """tests/test_nn_moe.cpp: a mixture-of-experts layer written from the papers' equations with per-token loops.
    Router p = softmax(x W_r^T); top-k experts (top-1: gate p_i, Switch; top-2: the two renormalised, GShard);
    capacity ceil(cf * k * N / E) filled slot-major (every first choice before any second); experts
    Linear-GELU-Linear; aux = E * sum_i f_i P_i with f over all k choices; z = mean(logsumexp(logits)^2).
    Inputs are "x" and the parameters under nn::MoE's state_dict names; out = cat(flat y, aux, z). Seeded on its
    own, so the other files stay unchanged."""
    torch.manual_seed(7)
    fam = Family("moe")
    C, H, E = 4, 5, 3

    def make(k, cf):
        def fn(**p):
            xf = p["x"].reshape(-1, C)
            N = xf.shape[0]
            logits = xf @ p["router.weight"].T
            probs = torch.softmax(logits, -1)
            topv, topi = probs.topk(k, dim=-1)
            gates = topv / topv.sum(-1, keepdim=True) if k > 1 else topv
            cap = math.ceil(cf * k * N / E)
            load, rows = [0] * E, [torch.zeros(C, dtype=D) for _ in range(N)]
            for j in range(k):
                for n in range(N):
                    e = int(topi[n, j])
                    if load[e] >= cap:
                        continue
                    load[e] += 1
                    h = F.gelu(xf[n] @ p[f"experts.{e}.0.weight"].T + p[f"experts.{e}.0.bias"])
                    rows[n] = rows[n] + gates[n, j] * (h @ p[f"experts.{e}.2.weight"].T + p[f"experts.{e}.2.bias"])
            f = torch.bincount(topi.reshape(-1), minlength=E).to(D) / (N * k)
            aux = E * (f * probs.mean(0)).sum()
            z = torch.logsumexp(logits, -1).pow(2).mean()
            return torch.cat([torch.stack(rows).reshape(-1), aux[None], z[None]])
        return fn

    def params():
        p = {"router.weight": randn(E, C) * 2}
        for e in range(E):
            p[f"experts.{e}.0.weight"], p[f"experts.{e}.0.bias"] = randn(H, C) * 0.5, randn(H) * 0.1
            p[f"experts.{e}.2.weight"], p[f"experts.{e}.2.bias"] = randn(C, H) * 0.5, randn(C) * 0.1
        return p

    fam.case("top1", make(1, 1.0), x=randn(2, 6, C), **params())
    fam.case("top2", make(2, 0.75), x=randn(2, 6, C), **params())
    return fam


def ssm_fixtures():
    """tests/test_ssm_parity.cpp: the selective scan and a Mamba block, written from Gu and Dao (2023)'s equations
    (A by zero-order hold, B by Euler, as the reference mamba_ssm). Seeded on its own, after the other families."""
    torch.manual_seed(7)
    fam = Family("ssm")
    t = fam.tensors

    def scan(u, delta, A, B, C, D):  # u, delta [b, l, e]; A [e, n]; B, C [b, l, n]; D [e]
        h = torch.zeros(u.shape[0], u.shape[2], A.shape[1], dtype=D.dtype)
        ys = []
        for i in range(u.shape[1]):
            dt = delta[:, i].unsqueeze(-1)
            h = torch.exp(dt * A) * h + dt * u[:, i].unsqueeze(-1) * B[:, i].unsqueeze(1)
            ys.append((h * C[:, i].unsqueeze(1)).sum(-1))
        return torch.stack(ys, 1) + u * D

    b, l, e, n = 2, 7, 5, 4
    fam.case("selective_scan", scan, u=randn(b, l, e), delta=F.softplus(randn(b, l, e)),
             A=-torch.exp(randn(e, n) * 0.5), B=randn(b, l, n), C=randn(b, l, n), D=randn(e))

    # A Mamba block, d_model 6, d_state 4, d_conv 3, expand 2, dt_rank 1, with random parameters.
    dm, n, k, ex, r = 6, 4, 3, 2, 1
    e = ex * dm
    params = {"in_proj.weight": randn(2 * e, dm) * 0.4, "conv1d.weight": randn(e, 1, k) * 0.5,
              "conv1d.bias": randn(e) * 0.1, "x_proj.weight": randn(r + 2 * n, e) * 0.3,
              "dt_proj.weight": randn(e, r) * 0.5, "dt_proj.bias": randn(e) * 0.5 - 1.0,
              "A_log": torch.log(torch.arange(1, n + 1, dtype=D)).repeat(e, 1) + randn(e, n) * 0.1,
              "D": torch.ones(e, dtype=D) + randn(e) * 0.1, "out_proj.weight": randn(dm, e) * 0.3}

    def block(x, **p):
        L = x.shape[1]
        xi, z = F.linear(x, p["in_proj.weight"]).chunk(2, -1)
        u = F.silu(F.conv1d(xi.transpose(1, 2), p["conv1d.weight"], p["conv1d.bias"], padding=k - 1, groups=e)[..., :L].transpose(1, 2))
        dt, Bm, Cm = F.linear(u, p["x_proj.weight"]).split([r, n, n], -1)
        delta = F.softplus(F.linear(dt, p["dt_proj.weight"], p["dt_proj.bias"]))
        y = scan(u, delta, -torch.exp(p["A_log"]), Bm, Cm, p["D"])
        return F.linear(y * F.silu(z), p["out_proj.weight"])

    leaves = {"input": randn(2, 9, dm), **params}
    leaves = {kk: v.clone().requires_grad_() for kk, v in leaves.items()}
    out = block(leaves["input"], **{kk: v for kk, v in leaves.items() if kk != "input"})
    w = torch.randn(out.shape, dtype=D)
    (out * w).sum().backward()
    for kk, v in leaves.items():  # parameters as "param.<name>" ("out_proj" would read as an output)
        key = kk if kk == "input" else "param." + kk
        t[f"mamba.{key}"] = v.detach().clone()
        t[f"mamba.grad.{key}"] = v.grad
    t["mamba.out"], t["mamba.w"] = out.detach(), w

    # The S4D kernel K[h, l] = 2 Re(sum_n C_n dB_n dA_n^l), in PyTorch's complex arithmetic (Gu et al. 2022):
    # ZOH dA = exp(dt A), dB = (dA - 1) / A; bilinear dA = (1 + dt A / 2) / (1 - dt A / 2), dB = dt / (1 - dt A / 2).
    def s4d_kernel(disc, L):
        def fn(log_dt, log_A_real, A_imag, C_re, C_im):
            dt = torch.exp(log_dt).unsqueeze(-1)
            A = torch.complex(-torch.exp(log_A_real), A_imag)
            dtA = A * dt
            if disc == "zoh":
                dA = torch.exp(dtA); dB = (dA - 1) / A
            else:
                dA = (1 + dtA / 2) / (1 - dtA / 2); dB = dt / (1 - dtA / 2)
            V = dA.unsqueeze(-1) ** torch.arange(L, dtype=D)  # Vandermonde [H, N/2, L]
            C = torch.complex(C_re, C_im) * dB
            return 2 * torch.einsum("dhn,hnl->dhl", C, V).real
        return fn

    H, n2 = 3, 4
    for disc in ("zoh", "bilinear"):
        fam.case(f"s4d_kernel_{disc}", s4d_kernel(disc, 11), log_dt=torch.log(torch.rand(H, dtype=D) * 0.3 + 0.05),
                 log_A_real=torch.log(torch.rand(H, n2, dtype=D) + 0.2), A_imag=randn(H, n2) * 3,
                 C_re=randn(1, H, n2), C_im=randn(1, H, n2))
    return fam


def npy_fixtures():
    """Files written by numpy itself, for the .npy loader."""
    sample = np.array([[0.0, 1.5, -2.0], [3.25, 4.0, -5.5]], dtype=np.float32)
    np.save(os.path.join(OUT_DIR, "np_sample.npy"), sample)
    np.save(os.path.join(OUT_DIR, "np_int64.npy"), np.array([7, -3, 0, 1 << 40], dtype=np.int64))
    np.save(os.path.join(OUT_DIR, "np_int32.npy"), np.array([[1, -2], [3, 2147483647]], dtype=np.int32))
    np.save(os.path.join(OUT_DIR, "np_bool.npy"), np.array([True, False, True]))
    np.save(os.path.join(OUT_DIR, "np_scalar.npy"), np.array(2.5, dtype=np.float64))
    np.save(os.path.join(OUT_DIR, "np_fortran.npy"), np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4)))
    with open(os.path.join(OUT_DIR, "np_v2.npy"), "wb") as f:
        np.lib.format.write_array(f, sample.astype(np.float64), version=(2, 0))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for fam in (unary(), binary(), reduce(), matmul(), index(), nn_fixtures(), optim_fixtures(), rnn_fixtures(),
                linear_attention_fixtures(), attention_fixtures(), moe_fixtures(), ssm_fixtures()):
        path = fam.write()
        total += os.path.getsize(path)
        print(f"{path}: {len(fam.tensors)} tensors, {os.path.getsize(path)} bytes")
    npy_fixtures()
    total += sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR) if f.endswith(".npy"))
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
