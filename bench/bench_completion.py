"""Shell completion: wall time of one TAB per kind of value, as a shell runs it (a fresh process).

Anchor: a TAB that completes a subcommand name (`segcli dataset up<TAB>`), which runs no segcli
callback: the rows' ratio to it is what segcli's own lookup adds (the store read, the cache read).
Each row is paired with an anchor run at the same moment, so machine load cancels out.
Usage: python bench/bench_completion.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, SEGCLI, machine, segcli_env, timed  # noqa: E402

CLOUD = {"SEGCLI_BACKEND": "clarifai", "CLARIFAI_USER_ID": "bench", "CLARIFAI_API_BASE": "http://127.0.0.1:9"}
ANCHOR = ("bash", "segcli dataset up", {})
CASES = {
    "--template": ("bash", "segcli train --template ", {}),
    "--app": ("bash", "segcli train --app ", {}),
    "--dataset": ("bash", "segcli train --app a --dataset ", {}),
    "--model": ("bash", "segcli train --app a --model ", {}),
    "VERSION after --model (200)": ("bash", "segcli train status --app a -m m ", {}),
    "VERSION, every model": ("bash", "segcli train status --app a ", {}),
    "--dataset-version after DATASET": ("bash", "segcli dataset preview d --app a --dataset-version ", {}),
    "--profile": ("bash", "segcli --profile ", {}),
    "-o": ("bash", "segcli app list -o ", {}),
    "VERSION, zsh (with help)": ("zsh", "segcli train status --app a -m m ", {}),
    "VERSION, fish (with help)": ("fish", "segcli train status --app a -m m ", {}),
    "clarifai --app (cache)": ("bash", "segcli train --app ", CLOUD),
    "clarifai VERSION (cache)": ("bash", "segcli train status --app a -m m ", CLOUD),
    "clarifai --model (no cache)": ("bash", "segcli train --app b --model ", CLOUD),
}


def tab_env(base: dict[str, str], shell: str, line: str, extra: dict[str, str]) -> dict[str, str]:
    env = {**base, **extra, "_SEGCLI_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        words = line.split()
        env.update(COMP_WORDS=line, COMP_CWORD=str(len(words) if line.endswith(" ") else len(words) - 1))
    else:
        env.update(_TYPER_COMPLETE_ARGS=line, _TYPER_COMPLETE_FISH_ACTION="get-args")
    return env


def store(home: Path, env: dict[str, str]) -> None:
    """App a: datasets d (one version) and e, models m (200 versions) and n; app b."""
    for argv in (
        ["app", "create", "a"],
        ["app", "create", "b"],
        ["dataset", "create", "d", "--app", "a"],
        ["dataset", "create", "e", "--app", "a"],
        ["model", "create", "m", "--app", "a"],
        ["model", "create", "n", "--app", "a"],
    ):
        timed([*SEGCLI, *argv], env)
    db = sqlite3.connect(home / "data" / "segcli.db")
    with db:
        db.execute(
            "INSERT INTO dataset_versions(app_id, dataset_id, id, created_at, concepts_json, n_inputs)"
            " VALUES ('a', 'd', 'dv1', '2024-05-01T10:00:00+00:00', '[]', 12)"
        )
        for i in range(200):
            model = "m" if i % 10 else "n"
            when = f"2024-05-{i % 28 + 1:02d}T10:{i % 60:02d}:00+00:00"
            db.execute(
                "INSERT INTO model_versions(app_id, model_id, id, status, template, params_json, concepts_json,"
                " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                ("a", model, f"{i:032x}", "TRAINED", "segcli_UNet", "{}", "[]", when, when),
            )
    db.close()
    # What `app list` and `model show m` would have cached on a Clarifai account.
    code = (
        "from segcli.config import resolve\nfrom segcli.cli import complete_cache as c\ns = resolve()\n"
        "c.remember(s, 'apps', (), [('a', '', ''), ('b', '', '')])\n"
        "c.remember(s, 'versions', ('a', 'm'), [(f'{i:032x}', 'TRAINED 2024-05-01 10:00', 'TRAINED') for i in range(200)])"
    )
    subprocess.run([sys.executable, "-c", code], env={**env, **CLOUD}, check=True)


def once(env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(SEGCLI, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or done.stderr:
        raise SystemExit(f"TAB failed: {done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {**segcli_env(home), "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        store(home, env)
        print(f"machine: {machine()}")
        anchor_env = tab_env(env, *ANCHOR)
        once(anchor_env)
        print(f"{'anchor: subcommand name':34s} (each row paired with its own anchor runs)")
        for name, (shell, line, extra) in CASES.items():
            case_env = tab_env(env, shell, line, extra)
            anchors, times, out = [], [], ""
            for _ in range(args.runs):
                anchors.append(once(anchor_env)[0])
                elapsed, out = once(case_env)
                times.append(elapsed)
            n = len([x for x in out.splitlines() if x.strip()]) if shell != "zsh" else out.count('":"')
            ratio = statistics.median(times) / statistics.median(anchors)
            print(
                f"{name:34s} {statistics.median(times) * 1000:6.0f} ms  max {max(times) * 1000:5.0f} ms  "
                f"anchor {statistics.median(anchors) * 1000:5.0f} ms  ratio {ratio:4.2f}  ({n} candidates)"
            )
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
