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
import os
import struct

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
    for fam in (unary(), binary(), reduce(), matmul(), index()):
        path = fam.write()
        total += os.path.getsize(path)
        print(f"{path}: {len(fam.tensors)} tensors, {os.path.getsize(path)} bytes")
    npy_fixtures()
    total += sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in os.listdir(OUT_DIR) if f.endswith(".npy"))
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
