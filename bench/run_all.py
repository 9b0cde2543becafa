"""Run every benchmark in turn; each prints its figure beside the anchor it measured in the same run.

Usage: python bench/run_all.py [--quick]    (--quick: smaller sizes, for a smoke run)
Record the output in bench/RESULTS.md with the machine line and date each script prints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Quality figures (polygon fidelity, per-template training, COCO overlays) run last: they take
# minutes to tens of minutes. --quick keeps the fast ones and smaller sizes, for a smoke run.
FULL = [
    ["bench_startup.py"],
    ["bench_completion.py"],
    ["bench_ingest.py"],
    ["bench_upload.py"],
    ["bench_predict.py"],
    ["bench_train.py"],
    ["polygon_fidelity.py"],
    ["bench_templates.py"],
    ["coco_overlays.py"],
]
QUICK = [
    ["bench_startup.py", "--runs", "5"],
    ["bench_completion.py", "--runs", "3"],
    ["bench_ingest.py", "--n", "200"],
    ["bench_upload.py", "--n", "200"],
    ["bench_predict.py", "--n", "40"],
    ["bench_train.py", "--budget", "30", "--steps", "4", "--sizes", "tiny"],
    ["polygon_fidelity.py"],
]


def main() -> int:
    failed = 0
    for argv in QUICK if "--quick" in sys.argv else FULL:
        print(f"\n=== {' '.join(argv)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
