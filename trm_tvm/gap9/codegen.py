"""Small C emitters shared by the GAP9 project generator and the functional self-tests."""
from __future__ import annotations

import numpy as np

_CTYPES = {np.int8: "int8_t", np.uint8: "uint8_t", np.int16: "int16_t", np.int32: "int32_t"}


def c_array(name: str, values: np.ndarray, placement: str = "") -> str:
    """`const <type> name[n] = {...};` for an integer numpy array (flattened, row-major)."""
    ctype = _CTYPES[values.dtype.type]
    flat = values.reshape(-1)
    rows = [", ".join(str(int(v)) for v in flat[i:i + 24]) for i in range(0, flat.size, 24)]
    body = ",\n  ".join(rows)
    attr = f"{placement} " if placement else ""
    return f"{attr}const {ctype} {name}[{flat.size}] = {{\n  {body}\n}};\n"


def c_defines(values: dict[str, int]) -> str:
    return "".join(f"#define {k} {int(v)}\n" for k, v in values.items())
