"""Sweeps: `segcli train ... --sweep KEY=V1,V2 [--sweep ...]` trains the grid of every
combination (or `--sweep-samples N` of them drawn at random: a budgeted random search), one
version after another, on one dataset snapshot, then compares them.

A sweep is resumable like any training. Its record (data_dir()/sweeps/ID.json, ID a hash of
the backend, app, model and every point's params) names the dataset version and each point's
model version as soon as it exists. Running the same command again while a point is not
TRAINED continues: trained points are kept, a running one is watched, a cancelled or failed
one is resumed where the backend can (else trained anew), the rest are started. Once every
point is TRAINED, the same command starts a new sweep.

Stopping: Ctrl-C stops watching (the running point goes on; re-run to continue); `segcli train
cancel` on the running point stops the sweep after it (exit 10); a point that fails does not
stop the others (exit 9 at the end).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Callable, Optional

from segcli.backends.base import Backend
from segcli.core.entities import CANCELLED, TRAINED, TRAINING_FAILED, ModelVersion
from segcli.core.errors import CancelledError, ConflictError, InvalidInputError, NotFoundError, TrainingFailedError
from segcli.core.training_progress import epoch_summary
from segcli.render.output import Output

SWEEPS_DIR = "sweeps"
FORMAT = "segcli-sweep/1"


def split_values(text: str) -> list[str]:
    """ "1e-4,2e-4" -> ["1e-4", "2e-4"]; commas inside brackets stay: "[256,256],[320,320]"."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[({"
        depth -= char in "])}"
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_axes(specs: list[str], sets: list[str]) -> list[tuple[str, list[str]]]:
    """--sweep KEY=V1,V2 flags -> [(key, values)], in the order given."""
    axes: list[tuple[str, list[str]]] = []
    fixed = {s.split("=", 1)[0].strip() for s in sets if "=" in s}
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        values = [v for v in split_values(raw) if v] if sep else []
        if not key or not values:
            raise InvalidInputError(
                f"--sweep {spec!r}: expected KEY=V1,V2,...",
                hint="e.g. --sweep per_item_lrate=1e-4,2e-4 --sweep image_size=256,320",
            )
        if any(key == k for k, _ in axes):
            raise InvalidInputError(f"--sweep names {key} twice", hint=f"give every value of {key} in one --sweep")
        if key in fixed:
            raise InvalidInputError(f"{key} is both --set and --sweep", hint=f"drop --set {key}=...")
        if len(set(values)) != len(values):
            raise InvalidInputError(
                f"--sweep {key}: a value is repeated ({', '.join(values)})", hint="give each value once"
            )
        axes.append((key, values))
    return axes


def grid(axes: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Every combination, the first axis varying slowest."""
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(values for _, values in axes))]


def sample(points: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    """A budgeted random search: `n` distinct points of the grid, drawn the same way every time
    for the same grid (so the same command resumes the same sample), kept in grid order."""
    import random

    if n >= len(points):
        return points
    seed = hashlib.sha256(json.dumps(points, sort_keys=True).encode()).digest()
    chosen = set(random.Random(seed).sample(range(len(points)), n))
    return [p for i, p in enumerate(points) if i in chosen]


def point_label(point: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items())


class Sweep:
    """One sweep's plan and record; `run` trains it to the end."""

    def __init__(
        self,
        backend: Backend,
        app_id: str,
        model_id: str,
        points: list[dict[str, str]],
        docs: list[dict[str, Any]],
        record_dir: Path,
    ):
        self.backend, self.app_id, self.model_id = backend, app_id, model_id
        self.points, self.docs = points, docs
        key = json.dumps(
            {"backend": backend.name, "app": app_id, "model": model_id, "docs": [_identity(d) for d in docs]},
            sort_keys=True,
        )
        self.id = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.path = record_dir / SWEEPS_DIR / f"{self.id}.json"
        self.record = self._load()

    # -- the record ------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            record = json.loads(self.path.read_text())
            if record.get("format") == FORMAT and len(record.get("versions", [])) == len(self.points):
                return record
        except (OSError, ValueError):
            pass
        return self._fresh()

    def _fresh(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "id": self.id,
            "app_id": self.app_id,
            "model_id": self.model_id,
            "dataset_id": None,
            "dataset_version_id": None,
            "points": self.points,
            "versions": [None] * len(self.points),
        }

    def _save(self) -> None:
        from segcli.core.files import write_text_atomic

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self.record, indent=2))

    def versions(self) -> list[Optional[ModelVersion]]:
        out = []
        for vid in self.record["versions"]:
            try:
                out.append(self.backend.get_version(self.app_id, self.model_id, vid) if vid else None)
            except NotFoundError:  # a version deleted since: train that point again
                out.append(None)
        return out

    def unfinished(self) -> bool:
        """True when a previous run of this sweep left points to do (then it is continued)."""
        found = self.versions()
        return any(v is not None for v in found) and not all(v is not None and v.status == TRAINED for v in found)

    # -- the run -----------------------------------------------------------------------------
    def run(
        self,
        prepare: Callable[[dict[str, str], Optional[str]], dict[str, Any]],
        start: Callable[[dict[str, Any]], ModelVersion],
        watch: Callable[[str], ModelVersion],
        sink: Output,
    ) -> list[ModelVersion]:
        """Train every point. `prepare(point, dataset_version)` resolves a point's document
        (the first snapshots the dataset when no version is given); `start(doc)` starts a
        version; `watch(version_id)` follows it to its end."""
        if self.unfinished():
            done = sum(v is not None and v.status == TRAINED for v in self.versions())
            sink.info(f"continuing sweep {self.id}: {done} of {len(self.points)} points trained")
        else:
            self.record = self._fresh()
        ended: list[ModelVersion] = []
        for index, (point, found) in enumerate(zip(self.points, self.versions())):
            label = f"sweep point {index + 1}/{len(self.points)}: {point_label(point)}"
            version = self._run_point(index, point, found, prepare, start, watch, sink, label)
            ended.append(version)
            if version.status == CANCELLED:  # the user stopped it: the sweep stops after it
                break
        return ended

    def _run_point(self, index, point, found, prepare, start, watch, sink, label) -> ModelVersion:
        if found is not None and found.status == TRAINED:
            sink.info(f"{label}: trained already (version {found.id})")
            return found
        if found is not None and not found.is_final:
            sink.info(f"{label}: watching version {found.id}")
            return watch(found.id)
        if found is not None:
            try:
                resumed = self.backend.resume_training(self.app_id, self.model_id, found.id)
                sink.info(f"{label}: resuming version {resumed.id} after epoch {resumed.epoch}")
                return watch(resumed.id)
            except ConflictError:  # a backend that cannot resume: train the point anew
                pass
        doc = prepare(point, self.record["dataset_version_id"])
        if self.record["dataset_version_id"] is None:
            self.record["dataset_id"], self.record["dataset_version_id"] = doc["dataset_id"], doc["dataset_version_id"]
        version = start(doc)
        self.record["versions"][index] = version.id
        self._save()
        sink.info(f"{label}: training version {version.id}")
        return watch(version.id)


def _identity(doc: dict[str, Any]) -> dict[str, Any]:
    """What makes two sweeps the same: the params and the data named, not the snapshot made."""
    return {k: v for k, v in doc.items() if k != "dataset_version_id" or not doc.get("dataset_id")}


def summary_rows(points: list[dict[str, str]], versions: list[ModelVersion]) -> list[dict[str, Any]]:
    """One row per point: its values, the version, and the numbers `model compare` shows."""
    rows = []
    for point, v in zip(points, versions):
        rows.append(
            {
                "point": point,
                "version_id": v.id,
                "status": v.status,
                **epoch_summary(v),
                "epochs_run": len(v.history),
                "seconds": training_seconds(v),
            }
        )
    return rows


def training_seconds(v: ModelVersion) -> Optional[float]:
    seconds = v.metrics.get("seconds")
    if isinstance(seconds, (int, float)):
        return round(float(seconds), 2)
    known = [h.get("seconds") for h in v.history if isinstance(h.get("seconds"), (int, float))]
    return round(sum(known), 2) if known else None


def best_row(rows: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The point whose kept weights scored the highest best val mIoU (the first on ties)."""
    scored = [r for r in rows if r["status"] == TRAINED and isinstance(r.get("best_val_mIoU"), (int, float))]
    return max(scored, key=lambda r: r["best_val_mIoU"]) if scored else None


def table_rows(rows: list[dict[str, Any]], best: Optional[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sweep's table for people: the point's values first, the best marked."""
    return [
        {
            **r["point"],
            "best": "★" if r is best else "",
            "best_val_mIoU": r.get("best_val_mIoU"),
            "best_epoch": r.get("best_epoch"),
            "last_val_mIoU": r.get("last_val_mIoU"),
            "epochs": r["epochs_run"],
            "seconds": r["seconds"],
            "status": r["status"],
            "version": r["version_id"][:8],
        }
        for r in rows
    ]


def raise_for_outcome(rows: list[dict[str, Any]], planned: int) -> None:
    """Exit 10 when a cancel stopped the sweep, 9 when a point failed, else nothing (0)."""
    cancelled = [r for r in rows if r["status"] == CANCELLED]
    if cancelled:
        raise CancelledError(
            f"sweep stopped after {len(rows)} of {planned} points: version "
            f"{cancelled[0]['version_id']} ({point_label(cancelled[0]['point'])}) was cancelled",
            hint="run the same command again to resume the sweep",
        )
    failed = [r for r in rows if r["status"] == TRAINING_FAILED]
    if failed:
        raise TrainingFailedError(
            f"{len(failed)} of {len(rows)} sweep points failed: " + "; ".join(point_label(r["point"]) for r in failed),
            hint=f"segcli train log {failed[0]['version_id']} --model MODEL",
        )
