"""The data section of a generated script: a split's arrays embedded as compact text."""

from __future__ import annotations

import base64
import zlib

import numpy as np

CHUNK = 88  # characters of base64 per line: the lines stay under the 100-column limit
# An array with at most this many distinct values is stored as a codebook of its values and
# one byte per entry (digits' pixels take 17 values): a fifth of the text or less.
CODEBOOK_MAX = 256
NAMES = ("x_train", "y_train", "x_val", "y_val")


def _blob(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def _constant(name: str, text: str) -> list[str]:
    """`NAME = "..."`, or the text split over lines inside parentheses."""
    if len(text) <= CHUNK:
        return [f'{name} = "{text}"']
    lines = [f"{name} = ("]
    lines += [f'    "{text[i:i + CHUNK]}"' for i in range(0, len(text), CHUNK)]
    return lines + [")"]


def _shape(shape: tuple[int, ...]) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"


def _pack(name: str, array: np.ndarray) -> tuple[str, list[str]]:
    """(the expression that rebuilds `array`, the constants it reads)."""
    array = np.ascontiguousarray(array)
    const = name.upper()
    values, codes = np.unique(array, return_inverse=True)
    codes = codes.reshape(array.shape)
    exact = np.array_equal(values[codes].view(np.uint8), array.view(np.uint8))  # -0.0 stays
    if exact and len(values) <= CODEBOOK_MAX and codes.size > 4 * len(values):
        codes = codes.astype(np.uint8)
        expr = (f'unpack({const}_VALUES, "{array.dtype}")'
                f'[unpack({const}_CODES, "uint8", {_shape(array.shape)})]')
        return expr, (_constant(f"{const}_VALUES", _blob(values.astype(array.dtype).tobytes()))
                      + _constant(f"{const}_CODES", _blob(codes.tobytes())))
    expr = f'unpack({const}, "{array.dtype}", {_shape(array.shape)})'
    return expr, _constant(const, _blob(array.tobytes()))


def data_section(split) -> list[str]:
    """`load_data()`, `unpack()` and the embedded arrays of `split` (train and validation)."""
    exprs, constants = [], []
    for name in NAMES:
        array = getattr(split, name)
        if array.dtype not in (np.float32, np.int64):
            raise ValueError(f"the split's {name} is {array.dtype}; expected float32 or int64")
        expr, lines = _pack(name, array)
        exprs.append(f"    {name} = {expr}")
        constants += lines
    return [
        "# ----------------------------------------------------------------- data",
        "def unpack(text, dtype, shape=(-1,)):",
        '    """An embedded array: base64 text of its zlib-compressed raw bytes."""',
        "    raw = zlib.decompress(base64.b64decode(text))",
        "    return np.frombuffer(raw, dtype=dtype).reshape(shape)",
        "",
        "",
        "def load_data():",
        '    """The lab\'s split, exactly: inputs standardised with the training set\'s',
        "    statistics, label noise (if any) already in the training labels. Returns",
        '    (x_train, y_train, x_val, y_val) as tensors."""',
        *exprs,
        "    return tuple(torch.from_numpy(a.copy()) for a in (x_train, y_train, x_val, y_val))",
        "",
        "",
        *constants,
    ]
