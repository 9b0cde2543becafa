"""Model-version training simulation: a status that advances QUEUED -> TRAINING -> final,
by number of status reads ("polls") or by wall-clock seconds, plus a training log."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .protos import C

POLLS = "polls"
SECONDS = "seconds"


@dataclass
class TrainingPlan:
    """How long each stage lasts. With by="polls", each read of the version's status
    (GetModel, GetModelVersion, ListModelVersions) counts one: queued=1, training=2 gives
    reads #1 QUEUED, #2-#3 TRAINING, #4 on TRAINED (or the failure code)."""

    queued: float = 1
    training: float = 2
    by: str = POLLS
    failure_code: int | None = None  # e.g. C.MODEL_TRAINING_FAILED for every new version


@dataclass
class VersionRecord:
    id: str
    model_id: str
    created: float
    params: dict
    concept_ids: list[str]
    dataset_id: str = ""
    dataset_version_id: str = ""
    metadata: dict = field(default_factory=dict)  # as posted
    outcome: int = C.MODEL_TRAINED  # final code, decided at creation (validation) or forced
    outcome_details: str = ""
    plan: TrainingPlan = field(default_factory=TrainingPlan)
    polls: int = 0
    forced_code: int | None = None  # set by FakeClarifai.finish_training / fail_version
    completed: float | None = None

    def elapsed(self) -> float:
        """Stage clock: reads before the latest one (so read #1 sees t=0), or seconds."""
        if self.plan.by == POLLS:
            return max(self.polls - 1, 0)
        return time.time() - self.created

    def code(self) -> int:
        """Current status code, without counting a poll."""
        if self.forced_code is not None:
            return self.forced_code
        elapsed = self.elapsed()
        if elapsed < self.plan.queued:
            return C.MODEL_QUEUED_FOR_TRAINING
        if elapsed < self.plan.queued + self.plan.training:
            return C.MODEL_TRAINING
        return self.outcome

    def poll(self) -> int:
        """Count one status read, then return the status that read sees. code() without
        poll() repeats what the latest read saw (QUEUED before any read)."""
        self.polls += 1
        code = self.code()
        if code not in (C.MODEL_QUEUED_FOR_TRAINING, C.MODEL_TRAINING) and self.completed is None:
            self.completed = time.time()
        return code

    def progress(self) -> float:
        """Percent of the training stage done (0 while queued, 100 when finished)."""
        code = self.code()
        if code == C.MODEL_QUEUED_FOR_TRAINING:
            return 0.0
        if code != C.MODEL_TRAINING:
            return 100.0
        done = (self.elapsed() - self.plan.queued) / max(self.plan.training, 1e-9)
        return round(100.0 * min(max(done, 0.0), 1.0), 1)

    def epochs(self) -> int:
        return int(self.params.get("num_epochs", 1) or 1)

    def details(self) -> str:
        code = self.code()
        if code == C.MODEL_TRAINING:
            epoch = min(int(self.progress() / 100 * self.epochs()), self.epochs() - 1)
            return f"Training stage... epoch {epoch}/{self.epochs()}"
        if code == C.MODEL_QUEUED_FOR_TRAINING:
            return "Waiting for a training worker"
        return self.outcome_details if code == self.outcome else ""

    def has_log(self) -> bool:
        return self.code() != C.MODEL_QUEUED_FOR_TRAINING

    def log_text(self) -> str:
        """Deterministic log lines: one per finished epoch, then the outcome."""
        lines = [f"version {self.id} of model {self.model_id}", f"params {sorted(self.params)}"]
        finished = self.code() not in (C.MODEL_QUEUED_FOR_TRAINING, C.MODEL_TRAINING)
        done = self.epochs() if finished else int(self.progress() / 100 * self.epochs())
        for epoch in range(1, done + 1):
            lines.append(f"epoch {epoch}/{self.epochs()} loss={1.0 / (epoch + 1):.4f}")
        if finished:
            lines.append(f"finished with status {self.code()} {self.details()}".rstrip())
        return "\n".join(lines) + "\n"
