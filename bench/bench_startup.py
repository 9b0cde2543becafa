"""Startup: wall time of `segcli --help` and `segcli app list` vs `clarifai --help` (goal <= 0.5x).

Median of N runs each, same machine, same moment. Usage: python bench/bench_startup.py [--runs 15]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, segcli_env, timed  # noqa: E402


def median_s(cmd: list[str], env: dict[str, str], runs: int) -> float:
    timed(cmd, env)  # warm the file cache once
    return statistics.median(timed(cmd, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    segcli, clarifai = str(bindir / "segcli"), shutil.which("clarifai", path=str(bindir)) or shutil.which("clarifai")
    with tempfile.TemporaryDirectory() as home:
        env = segcli_env(Path(home))
        timed([segcli, "app", "create", "bench"], env)
        rows = [("segcli --help", median_s([segcli, "--help"], env, args.runs)),
                ("segcli app list", median_s([segcli, "app", "list"], env, args.runs))]
        anchor = median_s([clarifai, "--help"], env, args.runs) if clarifai else None
    print(f"machine: {machine()}")
    if anchor is None:
        print("clarifai CLI not installed (pip install 'segcli[clarifai]'): no anchor")
    else:
        print(f"{'clarifai --help':18s} {anchor * 1000:7.0f} ms   (anchor)")
    for name, seconds in rows:
        ratio = f"ratio {seconds / anchor:.2f}x the anchor (goal <= 0.5x)" if anchor else ""
        print(f"{name:18s} {seconds * 1000:7.0f} ms   {ratio}")


if __name__ == "__main__":
    main()
