"""Local ingest: `segcli dataset upload` of N image+mask items vs `cp -r` of the same files.

Goal (issue 5): upload time <= 2x the copy's time. Prints items/s for both and the ratio.
Usage: python bench/bench_ingest.py [--n 1000] [--size 512]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SEGCLI, machine, segcli_env, shapes, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    data = shapes(args.n, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        copy_s = timed(["cp", "-r", str(data), str(tmp / "copy")])
        env = segcli_env(tmp / "home")
        timed([*SEGCLI, "app", "create", "b"], env)
        timed([*SEGCLI, "dataset", "create", "d", "--app", "b"], env)
        upload_s = timed([*SEGCLI, "dataset", "upload", "d", "--app", "b", "--images", str(data / "images"),
                          "--masks", str(data / "masks"), "-q"], env)
        rerun_s = timed([*SEGCLI, "dataset", "upload", "d", "--app", "b", "--images", str(data / "images"),
                         "--masks", str(data / "masks"), "-q"], env)
        shutil.rmtree(tmp / "copy")
    print(f"machine: {machine()}")
    print(f"items: {args.n} x {args.size}px image+mask")
    print(f"cp -r:          {copy_s:7.2f} s  {args.n / copy_s:8.0f} items/s   (anchor)")
    print(f"segcli upload:  {upload_s:7.2f} s  {args.n / upload_s:8.0f} items/s   ratio {upload_s / copy_s:.2f}x the copy (goal <= 2x)")
    print(f"re-run (skip):  {rerun_s:7.2f} s  {args.n / rerun_s:8.0f} items/s")


if __name__ == "__main__":
    main()
