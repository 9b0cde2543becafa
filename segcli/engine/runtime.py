"""Where and how the engine computes: device, bf16 autocast, CPU threads, seeding."""

from __future__ import annotations

import os
import random
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from segcli.core.errors import InvalidInputError


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp: bool  # bf16 autocast on

    def autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    @property
    def name(self) -> str:
        return f"{self.device.type}{' bf16' if self.amp else ''}"


def cpu_has_native_bf16() -> bool:
    """True only where the CPU computes bf16 in hardware (AVX512-BF16 or AMX).

    oneDNN emulates bf16 on plain AVX512, and there bf16 autocast is ~2x SLOWER than fp32
    (measured on an AVX512 Xeon without avx512_bf16); with native support it is ~2x faster.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    cpu = getattr(torch, "cpu", None)
    if cpu is not None and all(hasattr(cpu, p) for p in probes):
        return any(getattr(cpu, p)() for p in probes)
    try:  # older torch: read the kernel's flags
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return " avx512_bf16" in flags or " amx_bf16" in flags
    except OSError:
        return False


def select(device: str = "auto", mixed_precision: str = "auto") -> Runtime:
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device=cuda but torch sees no CUDA GPU", hint="use --set device=cpu (or auto)")
    dev = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if mixed_precision == "no":
        amp = False
    elif dev.type == "cuda":
        amp = torch.cuda.is_bf16_supported()
    elif mixed_precision == "bf16":
        amp = True  # asked for explicitly: honour it even where it is emulated
    else:
        amp = cpu_has_native_bf16()
    if dev.type == "cpu":
        set_cpu_threads()
    return Runtime(dev, amp)


def set_cpu_threads() -> None:
    # torch defaults to the machine's core count; a container or taskset may allow fewer.
    # An explicit OMP_NUM_THREADS / torch.set_num_threads by the user wins.
    if "OMP_NUM_THREADS" in os.environ:
        return
    from segcli.core.cpus import usable_cpus

    torch.set_num_threads(max(1, min(usable_cpus(), torch.get_num_threads())))


def seed_all(*key: int) -> None:
    """Seed every RNG the training step uses from a tuple (seed, epoch): epoch k of a resumed
    run sees exactly the randomness (dropout, drop-path) of epoch k of an uninterrupted one."""
    s = int(np.random.SeedSequence(list(key)).generate_state(1)[0])
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
