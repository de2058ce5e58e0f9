"""The quantised-model artifact: one versioned .npz (JSON header + tensors), validated on load. Schema: docs/artifact.md.

The header holds the integer graph (prologue, one `net` call, heads), the recursion schedule, halting, task I/O,
the float scales of every activation and provenance; the tensors are the device constants (int8 / packed int4
weights, int32 biases, multipliers and shifts, LUTs, constant inputs) plus study-only float weight scales.
Anything wrong is one UserError line naming the file and the problem.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trm_tvm.errors import UserError, atomic_write_bytes
from trm_tvm.quant import spec
from trm_tvm.quant.float_ref import Dims, call_updates

FORMAT = "trm-tvm-artifact"
VERSION = 1
HEADER_MEMBER = "__header__"
TENSOR_KINDS = ("weights", "biases", "multipliers", "luts", "other", "study")   # study: not for the device
OPS = ("patch", "embed", "linear", "head", "add_s8", "add_s32", "mul", "lut", "rmsnorm", "transpose", "mean_pool")
STATES = ("x", "y", "z")
FIX = "re-create it with python -m trm_tvm.quantize run (or trm_tvm.quant.fixtures.random_artifact)"


@dataclass
class Artifact:
    header: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = "<memory>"

    # -- conveniences ------------------------------------------------------------------------------------------------
    @property
    def dims(self) -> Dims:
        return Dims(**self.header["dims"])

    @property
    def graph(self) -> dict[str, list[dict]]:
        return self.header["graph"]

    @property
    def schedule(self) -> dict[str, Any]:
        return self.header["schedule"]

    @property
    def calls(self) -> list[dict]:
        return self.header["schedule"]["calls"]

    @property
    def numerics(self) -> dict:
        return self.header["numerics"]

    @property
    def on_device(self) -> bool:
        """Only int8 activations and an int8 state run on the device; other numerics are golden-model studies."""
        return self.numerics["act_bits"] == 8 and self.numerics["state_bits"] == 8

    def scale(self, activation: str) -> float:
        return self.header["activations"][activation]["scale"]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.tensors[name]

    def weight_bytes(self) -> dict[str, int]:
        """Device constant bytes per kind (the compile stage adds alignment padding)."""
        out = {k: 0 for k in TENSOR_KINDS if k != "study"}
        for name, meta in self.header["tensors"].items():
            if meta["kind"] != "study":
                out[meta["kind"]] += int(self.tensors[name].nbytes)
        return out

    # -- file I/O ----------------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        header = np.frombuffer(json.dumps(self.header, indent=1).encode(), dtype=np.uint8)
        np.savez_compressed(buf, **{HEADER_MEMBER: header}, **self.tensors)
        return buf.getvalue()

    def save(self, path: str | Path) -> str:
        """Validate, then write atomically; returns the file's sha256."""
        validate(self)
        data = self.to_bytes()
        atomic_write_bytes(path, data)
        self.path = str(path)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> "Artifact":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"artifact {path} does not exist", "check the path or " + FIX)
        try:
            with np.load(path, allow_pickle=False) as npz:
                members = {k: npz[k] for k in npz.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            raise UserError(f"artifact {path} is not a readable .npz ({type(e).__name__}: {str(e)[:80]})",
                            "the file is corrupted or not an artifact; " + FIX)
        if HEADER_MEMBER not in members:
            raise UserError(f"artifact {path} has no {HEADER_MEMBER} member", "not a trm-tvm artifact; " + FIX)
        try:
            header = json.loads(members.pop(HEADER_MEMBER).tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UserError(f"artifact {path} has an unreadable header ({e})", FIX)
        art = cls(header, members, str(path))
        validate(art)
        return art


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- validation ------------------------------------------------------------------------------------------------------
class _Invalid(Exception):
    pass


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise _Invalid(what)


def validate(art: Artifact) -> None:
    """Check format, version, tensors, graph and schedule; raise one UserError naming the first problem."""
    try:
        _validate(art)
    except _Invalid as e:
        raise UserError(f"artifact {art.path}: {e}", FIX) from None
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"artifact {art.path}: malformed header ({type(e).__name__}: {e})", FIX) from None


def _validate(art: Artifact) -> None:
    h = art.header
    _need(isinstance(h, dict) and h.get("format") == FORMAT, f"format is {h.get('format')!r}, expected {FORMAT!r}")
    _need(h.get("version") == VERSION, f"format version {h.get('version')!r}, this code reads version {VERSION}")
    for key in ("dims", "numerics", "io", "graph", "schedule", "halting", "activations", "state_init_scales",
                "tensors", "provenance"):
        _need(key in h, f"header misses {key!r}")
    dims = Dims(**h["dims"])
    nm = h["numerics"]
    _need(nm.get("act_bits") in (4, 8) and nm.get("state_bits") in (4, 8, 16),
          f"numerics act_bits/state_bits {nm.get('act_bits')}/{nm.get('state_bits')} not in 4|8 / 4|8|16")
    _need(nm.get("linear_multipliers", "normalised") in ("normalised", "shift32"),
          f"numerics linear_multipliers {nm.get('linear_multipliers')!r} not normalised|shift32")
    _validate_tensors(art)
    shapes = _validate_graph(art, dims)
    _validate_schedule(art, dims, shapes)
    _validate_io_and_halting(art, dims)


def _validate_tensors(art: Artifact) -> None:
    table = art.header["tensors"]
    for name, meta in table.items():
        _need(name in art.tensors, f"missing tensor {name!r}")
        t = art.tensors[name]
        _need(meta.get("kind") in TENSOR_KINDS, f"tensor {name!r} has unknown kind {meta.get('kind')!r}")
        _need(str(t.dtype) == meta["dtype"], f"tensor {name!r} has dtype {t.dtype}, header says {meta['dtype']}")
        _need(list(t.shape) == list(meta["shape"]),
              f"tensor {name!r} has shape {list(t.shape)}, header says {list(meta['shape'])}")
    extra = sorted(set(art.tensors) - set(table))
    _need(not extra, f"tensor(s) {', '.join(extra[:3])} not described in the header")


def _tensor(art: Artifact, name: Any, dtype: str, shape: tuple, where: str) -> None:
    _need(isinstance(name, str) and name in art.header["tensors"], f"{where}: missing tensor {name!r}")
    t = art.tensors[name]
    _need(str(t.dtype) == dtype, f"{where}: tensor {name!r} is {t.dtype}, expected {dtype}")
    _need(tuple(t.shape) == tuple(shape), f"{where}: tensor {name!r} has shape {list(t.shape)}, expected {list(shape)}")


def _validate_graph(art: Artifact, dims: Dims) -> dict[str, tuple]:
    """Walk prologue, net and heads in order; infer each activation's shape; check params. Returns the shapes."""
    nm = art.header["numerics"]
    acts = art.header["activations"]
    state_dtype = "int8" if nm["state_bits"] <= 8 else "int16"
    L, D = dims.tokens, dims.hidden
    shapes: dict[str, tuple] = {"input": dims.input_shape}
    for sec in ("prologue", "net", "heads"):
        _need(sec in art.graph and isinstance(art.graph[sec], list) and art.graph[sec], f"graph misses {sec!r}")
    for s in STATES:
        shapes[s] = (L, D)
    for sec in ("prologue", "net", "heads"):
        for k, node in enumerate(art.graph[sec]):
            where = f"graph.{sec}[{k}] ({node.get('name', node.get('op'))})"
            _need(node.get("op") in OPS, f"{where}: unknown op {node.get('op')!r}")
            out = _infer_node(art, node, shapes, where, dims)
            _need(isinstance(node.get("output"), str), f"{where}: no output name")
            name = node["output"]
            shapes[name] = out
            _need(name in acts, f"{where}: activation {name!r} missing from header.activations")
            _need(list(acts[name]["shape"]) == list(out),
                  f"{where}: activation {name!r} shape {acts[name]['shape']} but the graph gives {list(out)}")
    _need(art.graph["prologue"][-1]["output"] == "x", "the prologue must end by producing 'x'")
    last = art.graph["net"][-1]
    _need(last["op"] == "rmsnorm" and last.get("per_call") and last["output"] == "out",
          "the net must end with the per-call rmsnorm producing 'out'")
    first = art.graph["net"][0]
    _need(first["op"] == "add_s8" and first.get("per_call"), "the net must start with the per-call input add_s8")
    _need(acts["out"]["dtype"] == state_dtype, f"net output dtype must be {state_dtype}")
    return shapes


def _infer_node(art: Artifact, node: dict, shapes: dict, where: str, dims: Dims) -> tuple:
    op = node["op"]
    if node.get("per_call"):
        _need(op in ("add_s8", "rmsnorm"), f"{where}: only add_s8 and rmsnorm may be per_call")
        return (dims.tokens, dims.hidden)
    ins = node.get("inputs")
    _need(isinstance(ins, list) and ins, f"{where}: inputs must be a non-empty list")
    in_shapes = []
    for name in ins:
        if name in shapes:
            in_shapes.append(shapes[name])
        else:
            _need(name in art.header["tensors"], f"{where}: input {name!r} is neither an earlier activation nor a tensor")
            in_shapes.append(tuple(art.tensors[name].shape))
    a = in_shapes[0]
    if op == "patch":
        C, S, P = node["channels"], node["samples"], node["patch"]
        _need(a == (C, S) and S % P == 0, f"{where}: input shape {a} does not fit channels/samples/patch")
        return (S // P, C * P)
    if op == "embed":
        V, Dm = art.tensors[node["table"]].shape
        _tensor(art, node["table"], "int8", (V, Dm), where)
        return (a[0], Dm)
    if op in ("linear", "head"):
        n_in, n_out, bits = node["n_in"], node["n_out"], node.get("bits", 8)
        _need(a[-1] == n_in, f"{where}: input has {a[-1]} features, node says n_in={n_in}")
        _need(bits in (4, 8) and (op == "linear" or bits == 8), f"{where}: weight bits {bits} not allowed")
        if bits == 8:
            _tensor(art, node["weight"], "int8", (n_out, n_in), where)
        else:
            _tensor(art, node["weight"], "uint8", (n_out, (n_in + 1) // 2), where)
        if node.get("bias") is not None:
            _tensor(art, node["bias"], "int32", (n_out,), where)
        _tensor(art, node["mult"], "int32", (n_out,), where)
        _tensor(art, node["shift"], "int32", (n_out,), where)
        return (*a[:-1], n_out)
    if op in ("add_s8", "add_s32", "mul"):
        _need(all(s == a for s in in_shapes), f"{where}: input shapes {in_shapes} differ")
        if op == "mul":
            _need(len(ins) == 2, f"{where}: mul takes two inputs")
            _need(1 <= int(node["shift"]) <= 62, f"{where}: shift out of [1, 62]")
        else:
            m = node["mult"]
            _need(isinstance(m, list) and len(m) == len(ins) and all(0 <= v < spec.ADD_MULT_LIMIT for v in m),
                  f"{where}: mult must be {len(ins)} ints in [0, 2^15)")
            if op == "add_s8":
                _need(1 <= int(node["shift"]) <= 30, f"{where}: shift out of [1, 30]")
        return a
    if op == "lut":
        _tensor(art, node["table"], "int8", (256,), where)
        return a
    if op == "rmsnorm":
        _need(isinstance(node["eps"], int) and 0 <= node["eps"] < 2 ** 62, f"{where}: eps must be an int in [0, 2^62)")
        _tensor(art, node["mult"], "int32", (a[-1],), where)
        _tensor(art, node["shift"], "int32", (a[-1],), where)
        return a
    if op == "transpose":
        return tuple(reversed(a))
    if op == "mean_pool":
        _need(1 <= int(node["shift"]) <= 62, f"{where}: shift out of [1, 62]")
        return (a[-1],)
    raise _Invalid(f"{where}: op {op} not handled")   # unreachable: OPS checked above


def _validate_schedule(art: Artifact, dims: Dims, shapes: dict) -> None:
    sc = art.schedule
    _need(all(isinstance(sc.get(k), int) for k in ("n", "T", "N_sup")), "schedule needs integer n, T, N_sup")
    _need((sc["n"], sc["T"], sc["N_sup"]) == (dims.n, dims.T, dims.N_sup), "schedule n/T/N_sup differ from dims")
    _need(sc["n"] >= 0 and sc["T"] >= 1 and sc["N_sup"] >= 1, "schedule needs n >= 0, T >= 1, N_sup >= 1")
    mode = sc.get("state_scale_mode")
    _need(mode in ("shared", "per_step"), f"state_scale_mode {mode!r} is not shared|per_step")
    calls = sc.get("calls")
    want = call_updates(dims)
    _need(isinstance(calls, list) and len(calls) == len(want),
          f"schedule has {len(calls) if isinstance(calls, list) else 'no'} calls, expected T*(n+1) = {len(want)}")
    state_t = "int8" if art.numerics["state_bits"] <= 8 else "int16"
    _tensor(art, "y_init", state_t, (dims.hidden,), "schedule")
    _tensor(art, "z_init", state_t, (dims.hidden,), "schedule")
    # the scale each state holds when a call reads it: the last writer's, cyclically (y_init/z_init = last calls')
    last_out = {u: next(c["out_scale"] for c in reversed(calls) if c["update"] == u) for u in ("y", "z") if u in want}
    cur = {"x": art.scale("x"), "y": art.header["state_init_scales"]["y"], "z": art.header["state_init_scales"]["z"]}
    for u in last_out:
        _need(math.isclose(cur[u], last_out[u], rel_tol=1e-9),
              f"{u}_init scale {cur[u]:g} differs from the last {u}-call's output scale {last_out[u]:g}")
    out_names = set()
    wide = art.numerics["state_bits"] > 8       # study-only: see docs/integer-spec.md
    limit, max_shift = (spec.WIDE_ADD_MULT_LIMIT, 38) if wide else (spec.ADD_MULT_LIMIT, 30)
    for i, (c, u) in enumerate(zip(calls, want)):
        where = f"schedule.calls[{i}]"
        _need(c.get("update") == u, f"{where}: update {c.get('update')!r}, expected {u!r} (z^n y, T times)")
        ins = ["x", "y", "z"] if u == "z" else ["y", "z"]
        _need(c.get("inputs") == ins, f"{where}: inputs {c.get('inputs')} expected {ins}")
        m = c.get("in_mult")
        _need(isinstance(m, list) and len(m) == len(ins) and all(isinstance(v, int) and 0 <= v < limit for v in m),
              f"{where}: in_mult must be {len(ins)} ints in [0, {limit})")
        _need(isinstance(c.get("in_shift"), int) and 1 <= c["in_shift"] <= max_shift,
              f"{where}: in_shift out of [1, {max_shift}]")
        _tensor(art, c.get("out_mult"), "int32", (dims.hidden,), where)
        _tensor(art, c.get("out_shift"), "int32", (dims.hidden,), where)
        out_names.add((c["out_mult"], c["out_shift"]))
        scales = [cur[s] for s in ins]
        _need(len(c.get("in_scales", [])) == len(ins) and all(
            math.isclose(a, b, rel_tol=1e-9) for a, b in zip(scales, c["in_scales"])),
            f"{where}: in_scales {c.get('in_scales')} do not match the scales the inputs hold {scales}")
        cur[u] = c["out_scale"]
    if mode == "shared":
        _need(len(out_names) == 1, "state_scale_mode shared but the calls use different output multipliers")


def _validate_io_and_halting(art: Artifact, dims: Dims) -> None:
    io_ = art.header["io"]
    _need(io_.get("input_kind") == dims.input_kind, "io.input_kind differs from dims")
    _need(list(io_.get("input_shape", [])) == list(dims.input_shape), "io.input_shape differs from dims")
    _need(io_.get("input_dtype") == ("int8" if dims.input_kind == "series" else "uint8"), "io.input_dtype wrong")
    if dims.input_kind == "series":
        _need(isinstance(io_.get("input_scale"), float) and io_["input_scale"] > 0, "io.input_scale must be > 0")
    out_shape = [dims.tokens, dims.classes] if dims.per_token else [dims.classes]
    _need(list(io_.get("output_shape", [])) == out_shape, f"io.output_shape must be {out_shape}")
    hl = art.header["halting"]
    _need(0.0 <= hl.get("threshold", -1) <= 1.0, "halting.threshold must be in [0, 1]")
    _need(hl.get("q_scale", 0) > 0, "halting.q_scale must be > 0")
    _need(hl.get("q_thr") == spec.q_threshold(hl["threshold"], hl["q_scale"]),
          "halting.q_thr does not match threshold and q_scale")
