"""Start-up: wall time of `segcli --help`, metadata commands and shell-completion requests vs
`clarifai --help` (the anchor, measured in the same run; goal <= 0.5x).

Each command runs as its console script does (`python bin/segcli ...`), with this checkout first
on PYTHONPATH. Runs are interleaved round-robin (anchor included) so that load on a shared
machine hits every command alike; medians reported.
Usage: python bench/bench_startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, segcli_env, timed  # noqa: E402

GOAL = 0.5


def cases(segcli: list[str]) -> list[tuple[str, list[str], dict[str, str]]]:
    def complete(line: str) -> dict[str, str]:
        words = line.split(" ")
        return {"_SEGCLI_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}

    return [
        ("segcli --help", [*segcli, "--help"], {}),
        ("segcli app list", [*segcli, "app", "list"], {}),
        ("segcli template list", [*segcli, "template", "list"], {}),
        ("segcli model types", [*segcli, "model", "types"], {}),
        ("complete 'segcli '", segcli, complete("segcli ")),
        ("complete 'segcli dataset up'", segcli, complete("segcli dataset up")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    clarifai = shutil.which("clarifai", path=str(bindir)) or shutil.which("clarifai")
    segcli = [sys.executable, str(bindir / "segcli")]
    with tempfile.TemporaryDirectory() as home:
        env = segcli_env(Path(home))
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        # As installed (pip compiles every module at install): the warm-up run writes the .pyc
        # files of this checkout, so no command pays for compiling source.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        timed([*segcli, "app", "create", "bench"], env)
        todo = cases(segcli)
        if clarifai:
            todo.insert(0, ("clarifai --help (anchor)", [clarifai, "--help"], {}))
        times: dict[str, list[float]] = {name: [] for name, _, _ in todo}
        for name, cmd, extra in todo:  # warm the file cache
            timed(cmd, {**env, **extra})
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        for _ in range(args.runs):
            for name, cmd, extra in todo:
                times[name].append(timed(cmd, {**env, **extra}))
    medians = {name: statistics.median(t) for name, t in times.items()}
    anchor = medians.get("clarifai --help (anchor)")
    print(f"machine: {machine()}")
    print(f"date: {started}; {args.runs} interleaved runs each, medians")
    if anchor is None:
        print("clarifai CLI not installed (pip install 'segcli[clarifai]'): no anchor")
    for name, seconds in medians.items():
        ratio = (
            ""
            if anchor is None or name.startswith("clarifai")
            else f"  {seconds / anchor:.2f}x the anchor (goal <= {GOAL}x)"
        )
        print(f"{name:32s} {seconds * 1000:7.0f} ms{ratio}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
