"""TIR PrimFuncs -> plain C99: typed-pointer functions, no TVM runtime, no packed API, no malloc.

TVM 0.27's stock `tvm.tirx.build` emits the packed-function ABI; we run our own pass list instead (the s_tir
default pipeline minus AnnotateEntryFunc / SplitHostDevice / MakePackedAPI / LowerTVMBuiltin), turn buffer
parameters into typed pointers, call the C code generator and strip the TVM includes it prepends.
See /work/shared/notes/tvm-0.27-baremetal.md §3.
"""
from __future__ import annotations

import re

import tvm
from tvm import s_tir, tirx

C_TARGET = {"kind": "c"}


def _lowering_passes() -> list:
    return [
        s_tir.transform.CanonicalizeLoop(),
        s_tir.transform.LowerCrossThreadReduction(),
        s_tir.transform.LowerInitBlock(),
        s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(),
        s_tir.transform.CompactBufferAllocation(),
        s_tir.transform.LowerMatchBuffer(),
        s_tir.transform.StmtSimplify(),
        s_tir.transform.LowerOpaqueBlock(),
        tirx.transform.FlattenBuffer(),
        tirx.transform.NarrowDataType(32),
        s_tir.transform.LoopPartition(),
        tirx.transform.VectorizeLoop(True),
        tirx.transform.StorageRewrite(),
        tirx.transform.UnrollLoop(),
        tirx.transform.StmtSimplify(),
        tirx.transform.RemoveNoOp(),
        s_tir.transform.RewriteUnsafeSelect(),
        tirx.transform.CommonSubexprElim(),
        tirx.transform.VerifyMemory(),
    ]


@tvm.transform.module_pass(opt_level=0, name="BufferParamsToPointers")
def buffer_params_to_pointers(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
    """Buffer parameters become typed pointers (`int8_t* A`), each re-declared as a buffer over its pointer."""
    out = {}
    for gv, func in mod.functions.items():
        if not isinstance(func, tirx.PrimFunc):
            out[gv] = func
            continue
        ptrs, decls = [], []
        for p in func.params:
            if isinstance(p.ty, tirx.BufferType):
                ptr = tirx.Var(p.name, tvm.ir.PointerType(tvm.ir.PrimType(p.dtype)))
                decls.append(tirx.DeclBuffer(p, data=ptr))
                ptrs.append(ptr)
            else:
                ptrs.append(p)
        out[gv] = tirx.PrimFunc(ptrs, tirx.SeqStmt(decls + [func.body]), func.ret_type, func.attrs)
    return tvm.IRModule(out)


def lower(funcs: dict[str, tirx.PrimFunc]) -> tvm.IRModule:
    """Scheduled PrimFuncs (name -> func) -> one lowered IRModule ready for the C code generator."""
    mod = tvm.IRModule({name: f.with_attr("global_symbol", name).with_attr("tirx.noalias", True)
                        for name, f in funcs.items()})
    target = tvm.target.Target(C_TARGET)
    seq = tvm.transform.Sequential([tirx.transform.BindTarget(target), *_lowering_passes(),
                                    buffer_params_to_pointers, tirx.transform.LowerIntrin()])
    return seq(mod)


_TVM_LINES = re.compile(r'^(#define TVM_EXPORTS|#include "tvm/.*"|void\* __tvm_ffi__library_ctx = NULL;)\s*$', re.M)
PRELUDE = "#include <stdint.h>\n#include <stdbool.h>\n#include <math.h>\n#define TVM_DLL\n"


def to_c(funcs: dict[str, tirx.PrimFunc]) -> str:
    """Plain C source of the functions: `void name(int8_t* A, ...)`, nothing from TVM left."""
    mod = lower(funcs)
    src = tvm.get_global_func("target.build.c")(mod, tvm.target.Target(C_TARGET)).inspect_source()
    src = _TVM_LINES.sub("", src)
    assert "TVMFFI" not in src and "tvm/" not in src, "TVM runtime symbols left in the generated C"
    for ctype, name, n in _STACK_ARRAY.findall(src):
        if int(n) > MAX_STACK_ELEMS:
            raise ValueError(f"kernel scratch {ctype} {name}[{n}] would live on the stack; pass it from the arena")
    return PRELUDE + ('#include "trm_acle.h"\n' if ACLE_CALL.search(src) else "") + src


ACLE_CALL = re.compile(r"\b(__smlad|trm_ssat\d+|trm_smmulr|trm_smmla|trm_bit_length64|trm_mve_\w+)\(")  # extern calls defined in kernels/tvm/trm_acle.h


_STACK_ARRAY = re.compile(r"^\s+(u?int\d+_t) (\w+)\[(\d+)\];", re.M)
MAX_STACK_ELEMS = 16  # register blocks (accumulator tiles, per-token scalars) only
