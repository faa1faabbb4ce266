"""Same link, same curves on any x86-64 CPU: pin the math libraries' code paths.

MKL, ATen and oneDNN pick their kernels by instruction set, so one seed gave different
curves on AVX2 and AVX-512 machines (hundreds of epochs amplify the last bits). Pinning
every library to its AVX2 path costs these tiny nets nothing measurable and makes AVX2 and
AVX-512 machines compute alike. The variables must be set before torch loads, so
`regdemo/__init__.py` calls `pin()` before any of its imports (the libraries read them at
their first computation, so a torch imported earlier is still in time); a value already in
the environment wins (`ATEN_CPU_CAPABILITY=avx512` for AVX-512 kernels).
"""

from __future__ import annotations

import os
from pathlib import Path

PINS = {
    "MKL_CBWR": "AVX2",  # MKL's conditional numerical reproducibility branch
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vectorised kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (the cnn's convolutions)
    "NUMBA_CPU_NAME": "haswell",  # the fused kernel's compile target
    "OPENBLAS_CORETYPE": "Haswell",  # the BLAS the fused kernel's larger products call
}


def has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when this CPU runs AVX2 code (not knowable here: assume not, pin nothing)."""
    try:
        return " avx2" in cpuinfo.read_text()
    except OSError:
        return False


def pin(environ=os.environ, avx2: bool | None = None) -> dict[str, str]:
    """Set the pins not set already (only on CPUs with AVX2); returns what it set."""
    if not (has_avx2() if avx2 is None else avx2):
        return {}  # an older CPU: its own paths (a pinned AVX2 path would not run there)
    added = {k: v for k, v in PINS.items() if k not in environ}
    environ.update(added)
    return added
