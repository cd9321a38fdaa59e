"""Process set-up: seeding, device and precision choice, allocator tuning, library versions."""
from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csc8607.errors import UserError

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def tune_malloc() -> bool:
    """Keep freed memory in glibc's heap instead of returning large blocks to the OS after every step.

    With the default settings each step's activations are mmap'ed and unmapped, and the page faults cost
    about 1.8x on CPU training. Returns True when the settings were applied (glibc only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """`auto` = cuda > mps > cpu; otherwise the named device, checked to exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"trainer.device={name!r} is not a torch device (use auto, cpu, cuda, cuda:N or mps)") from err
    if device.type not in ("cpu", "cuda", "mps"):  # meta holds no values, xpu/hpu/... are not supported here
        raise UserError(f"trainer.device={name} is not supported: use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name} but CUDA is not available here: use trainer.device=auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"trainer.device={name} but MPS is not available here: use trainer.device=auto or cpu")
    return device


def native_bf16(cpuinfo: str | None = None) -> str | None:
    """The CPU feature that computes bf16 natively (AMX-BF16 or AVX512-BF16) per /proc/cpuinfo's flags, else None
    (elsewhere bf16 is emulated and slower than fp32)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: no claim
            return None
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    return next((name for name in ("amx_bf16", "avx512_bf16") if name in flags), None)


def pick_precision(name: str | int, device: torch.device, cpuinfo: str | None = None) -> tuple[str, str]:
    """Resolve trainer.precision to one of "32", "bf16", "16", and why (for the log and metrics.json).

    `auto` is the fastest setting that keeps accuracy (bench/precision_bench.py compares the final val accuracy
    of 3 seeds at fp32 and bf16): bf16 autocast on a GPU that supports it, else fp16 AMP; bf16 autocast on a CPU
    with native bf16; fp32 elsewhere (an older CPU would emulate bf16; MPS stays at fp32, not measured)."""
    name = str(name)
    if name == "auto":
        if device.type == "cuda":
            return ("bf16", "auto: this GPU supports bf16") if torch.cuda.is_bf16_supported() else \
                ("16", "auto: this GPU has no bf16, fp16 AMP with loss scaling")
        feature = native_bf16(cpuinfo) if device.type == "cpu" else None
        if feature:
            return "bf16", f"auto: this CPU computes bf16 natively ({feature}); trainer.precision=32 for fp32"
        return "32", f"auto: no native bf16 on this {device.type.upper()}"
    if name not in ("32", "bf16", "16"):
        raise UserError(f"trainer.precision={name} is not one of auto, 32, bf16, 16")
    if name == "16" and device.type != "cuda":
        raise UserError("trainer.precision=16 (fp16 AMP) needs CUDA; on CPU use trainer.precision=bf16")
    return name, "set by trainer.precision"


# trainer.compile=auto compiles a run of at least this many optimizer steps on these devices. Not on CPU:
# bench/compile_bench.py measured no steady-state gain for the 64x64 cnn (its convolutions already run oneDNN's
# kernels) and, on digits, a break-even near the whole default run; a cold compile costs 1-3 min of 2 cores.
# CUDA: not measured here (no GPU); compiling pays on a GPU where launch overhead dominates short kernels.
COMPILE_AUTO_MIN_STEPS = {"cuda": 1000}


def compile_unavailable(device: torch.device) -> str | None:
    """Why torch.compile cannot run on `device` here (inductor's compiler missing), or None."""
    if device.type == "mps":
        return "inductor's MPS backend is experimental and not used here"
    if device.type == "cuda":
        import importlib.util

        return None if importlib.util.find_spec("triton") else "inductor needs triton for CUDA and it is not installed"
    compiler = os.environ.get("CXX", "cl" if sys.platform == "win32" else "clang++" if sys.platform == "darwin"
                              else "g++")  # the C++ compiler inductor looks for (torch._inductor.config.cpp.cxx)
    return None if shutil.which(compiler) else f"inductor compiles C++ with `{compiler}`, which is not on PATH " \
        "(install g++, or set CXX)"


def pick_compile(value: Any, device: torch.device, steps: int) -> tuple[bool, str]:
    """Resolve trainer.compile (false | true | auto) for a run of `steps` optimizer steps: whether to compile the
    model, and why (for the log and metrics.json). `auto` compiles only where the compile time is paid back
    within the run (COMPILE_AUTO_MIN_STEPS) and the backend can run here."""
    if isinstance(value, str) and value.lower() in ("true", "false"):  # quoted on the command line: not a bool
        raise UserError(f"trainer.compile='{value}' is the string '{value}', not a boolean: write "
                        f"trainer.compile={value.lower()} unquoted")
    if not (isinstance(value, bool) or value == "auto"):
        raise UserError(f"trainer.compile={value} must be false, true or auto")
    if value is False:
        return False, "set by trainer.compile"
    missing = compile_unavailable(device)
    if value is True:
        if missing:
            raise UserError(f"trainer.compile=true cannot run here: {missing}; use trainer.compile=false")
        return True, "set by trainer.compile"
    needed = COMPILE_AUTO_MIN_STEPS.get(device.type)
    if needed is None:
        return False, f"auto: off on {device.type} (bench/compile_bench.py measured no gain there); trainer.compile=true forces it"
    if steps < needed:
        return False, f"auto: {steps} steps < {needed}, too few to pay back the compile time on {device.type}"
    if missing:
        return False, f"auto: {missing}"
    return True, f"auto: {steps} steps >= {needed} on {device.type}, the compile time is paid back"


def available_memory(device: torch.device) -> int | None:
    """Bytes a new allocation can use on `device`: free GPU memory, or MemAvailable on Linux (None: unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast context for the forward pass (a no-op at fp32)."""
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states in types `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def library_versions() -> dict[str, str]:
    """Versions recorded in every checkpoint and metrics file (report section 0)."""
    from importlib.metadata import version

    import hydra

    from csc8607 import __version__

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": version("torchvision"),  # read from the install, not imported (0.1-2 s)
        "hydra": hydra.__version__,
        "csc8607": __version__,
        # the CUDA the process can use: a CUDA build of torch on a machine without a GPU has none
        "cuda": str(torch.version.cuda) if torch.cuda.is_available() else "none",
        "platform": platform.platform(),
    }


def git_state(directory: str | Path) -> dict[str, Any]:
    """The git commit of `directory` (where the run was launched) and whether its tree had uncommitted changes:
    which code produced a result (report section 11). Empty outside a git checkout or without git."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {}
