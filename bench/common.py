"""Helpers shared by the benchmarks: generated data cached on disk, timed subprocesses, machine line."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(os.environ.get("SEGCLI_BENCH_CACHE", "/tmp/segcli-bench"))
REPO = Path(__file__).resolve().parents[1]


def shapes(n: int, size: int, seed: int = 0) -> Path:
    """Generated shapes dataset, made once per (n, size, seed) and reused."""
    out = CACHE / f"shapes-{n}-{size}-{seed}"
    if not (out / "classes.txt").exists():
        from segcli.datasets.synth import generate_shapes

        generate_shapes(out, n=n, size=size, seed=seed)
    return out


def timed(cmd: list[str], env: dict[str, str] | None = None, cpu: list[float] | None = None) -> float:
    """Wall seconds of `cmd`; with `cpu`, its CPU seconds (user + system, children included)
    are appended there."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    if cpu is not None:
        cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return elapsed


def segcli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGCLI_", "CLARIFAI_"))}
    env["SEGCLI_HOME"] = str(home)
    return env


SEGCLI = [sys.executable, "-m", "segcli"]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load {load:.2f}, python {platform.python_version()}"


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """One segcli command in a subprocess; with `check`, a failure stops the benchmark with
    the end of its stderr."""
    done = subprocess.run([*SEGCLI, *args], env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): segcli {' '.join(args)}\n{done.stderr[-2000:]}")
    return done


def train_model(env: dict[str, str], train_data: Path, model_size: str, size: int) -> None:
    """App b, dataset d (train_data's images + masks) and model m trained 1 epoch of segcli_UNet
    at size x size: the model the predict and serve benches run."""
    for argv in (
        ["app", "create", "b"],
        ["dataset", "create", "d", "--app", "b"],
        [
            "dataset",
            "upload",
            "d",
            "--app",
            "b",
            "--images",
            str(train_data / "images"),
            "--masks",
            str(train_data / "masks"),
            "-q",
        ],
        ["model", "create", "m", "--app", "b"],
        [
            "train",
            "--template",
            "segcli_UNet",
            "--model",
            "m",
            "--app",
            "b",
            "--dataset",
            "d",
            "--set",
            "num_epochs=1",
            "--set",
            f"model_size={model_size}",
            "--set",
            f"image_size=[{size},{size}]",
            "-q",
        ],
    ):
        timed([*SEGCLI, *argv], env)
