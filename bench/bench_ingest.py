"""Local ingest: `segcli dataset upload` of N image+mask items against the decode+hash floor.

Goals (issue 10): a first upload <= 1.2x the floor -- reading, hashing and fully decoding every
image and mask once (bench/decode_hash_floor.py, as its own process, on 1 worker, 2 threads and
2 processes; the fastest is the anchor) -- and a re-run of the finished upload <= 0.25x the
first upload. Both label sources: a mask folder, and COCO JSON (whose floor is its images).
`cp -r` of the same files is timed in each round too: the writes an upload cannot skip, which
the floor does not include.

Every command runs as its console script does (this checkout first on PYTHONPATH). Rounds
interleave floors and uploads so that load on a shared machine hits them alike; medians.
Usage: python bench/bench_ingest.py [--n 1000] [--size 512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, segcli_env, shapes, timed  # noqa: E402

TIMES: dict[str, list[float]] = {}  # wall seconds per figure
CPU: dict[str, list[float]] = {}  # CPU seconds (user + system, the whole process tree) per figure


def measure(cmd: list[str], name: str | None, env: dict[str, str] | None = None) -> None:
    """Run `cmd`; its wall and CPU seconds go to TIMES[name] and CPU[name] (name None: a
    warm-up or set-up run, not recorded)."""
    cpu: list[float] = []
    wall = timed(cmd, env, cpu)
    if name:
        TIMES.setdefault(name, []).append(wall)
        CPU.setdefault(name, []).append(cpu[0])


FIRST_GOAL, RERUN_GOAL = 1.2, 0.25
FLOORS = {
    "floor, 1 worker": ("process", 1, False),
    "floor, 2 threads": ("thread", 2, False),
    "floor, 2 processes": ("process", 2, False),
}
DRAFT = ("floor, 2 processes, JPEG at 1/8 (as segcli decodes)", ("process", 2, True))
COPY = "cp -r images masks (the writes alone)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = shapes(args.n, args.size)
    bindir = Path(sys.executable).parent
    segcli = [sys.executable, str(bindir / "segcli")]
    floor_cmd = [sys.executable, str(Path(__file__).resolve().parent / "decode_hash_floor.py")]
    sources = {
        "masks": ["--images", str(data / "images"), "--masks", str(data / "masks")],
        "coco": ["--images", str(data / "images"), "--coco", str(data / "annotations.json")],
    }
    floors = {**FLOORS, DRAFT[0]: DRAFT[1]}
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with tempfile.TemporaryDirectory() as tmp:
        base_env = segcli_env(Path(tmp) / "unused")
        base_env["PYTHONPATH"] = str(REPO) + os.pathsep + base_env.get("PYTHONPATH", "")
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)  # .pyc written once, as an install does
        for r in range(args.rounds + 1):  # round 0 warms the file cache and the .pyc files

            def recorded(name: str) -> str | None:
                return name if r else None

            for name, (mode, workers, draft) in floors.items():
                dirs = [str(data / "images"), str(data / "masks")]
                measure(
                    [*floor_cmd, *dirs, "--mode", mode, "--workers", str(workers), *(["--draft"] if draft else [])],
                    recorded(name),
                )
                if name == "floor, 2 processes":  # COCO reads only the images
                    measure(
                        [*floor_cmd, str(data / "images"), "--mode", mode, "--workers", "2"],
                        recorded("floor, 2 processes, images only"),
                    )
            copy = Path(tmp) / f"copy-{r}"  # what writing the same files costs on this disk
            copy.mkdir()
            measure(["cp", "-r", str(data / "images"), str(data / "masks"), str(copy)], recorded(COPY))
            for source, flags in sources.items():
                env = {**base_env, "SEGCLI_HOME": str(Path(tmp) / f"home-{source}-{r}")}
                timed([*segcli, "app", "create", "b"], env)
                timed([*segcli, "dataset", "create", "d", "--app", "b"], env)
                upload = [*segcli, "dataset", "upload", "d", "--app", "b", *flags, "-q"]
                measure(upload, recorded(f"{source}: first upload"), env)
                measure(upload, recorded(f"{source}: re-run"), env)
    med = {name: statistics.median(values) for name, values in TIMES.items()}
    floor_name = min(FLOORS, key=lambda name: med[name])
    floor = med[floor_name]
    print(f"machine: {machine()}")
    print(f"date: {started}; load average before {_load(load_before)}, after {_load(os.getloadavg())}")
    print(f"items: {args.n} x {args.size}px image (JPEG) + mask (PNG); {args.rounds} rounds, medians (min-max)")
    print(f"  {'':55s} {'wall':>6s}  {'(min-max)':11s}  CPU (user+sys, all processes)")
    for name, values in TIMES.items():
        cpu = statistics.median(CPU[name])
        print(f"  {name:55s} {med[name]:6.2f} s  ({min(values):.2f}-{max(values):.2f})  {cpu:5.2f} s")
    print(f"anchor: {floor_name} = {floor:.2f} s")
    copy = med[COPY]
    print(
        f"(an upload also writes every file: cp -r of the same files took {copy:.2f} s here; "
        f"floor + copy = {floor + copy:.2f} s)"
    )
    for source, source_floor in (("masks", floor), ("coco", med["floor, 2 processes, images only"])):
        first, rerun = med[f"{source}: first upload"], med[f"{source}: re-run"]
        print(
            f"{source}: first upload {first:.2f} s = {first / source_floor:.2f}x its floor "
            f"(goal <= {FIRST_GOAL}x; {first / med[DRAFT[0]]:.2f}x the JPEG-at-1/8 floor)"
            if source == "masks"
            else f"{source}: first upload {first:.2f} s = {first / source_floor:.2f}x decoding+hashing its images "
            f"(2 processes; rendering the polygons is on top)"
        )
        print(f"{source}: re-run {rerun:.2f} s = {rerun / first:.2f}x the first upload (goal <= {RERUN_GOAL}x)")
    cpu = {name: statistics.median(values) for name, values in CPU.items()}
    print(
        f"CPU time (a proxy when the machine is loaded): masks first upload {cpu['masks: first upload']:.2f} s = "
        f"{cpu['masks: first upload'] / cpu[floor_name]:.2f}x the anchor's; re-run "
        f"{cpu['masks: re-run'] / cpu['masks: first upload']:.2f}x the first upload's"
    )


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in load)


if __name__ == "__main__":
    main()
