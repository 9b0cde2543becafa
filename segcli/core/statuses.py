"""Model-version training statuses and the sets the rules and completion test them against.

A module with no imports: shell completion (cli/complete.py) filters version ids by status on
every TAB press, and core/entities.py's dataclasses are not for it."""

# As Clarifai names them, plus CANCELLED for local runs.
QUEUED, TRAINING, TRAINED, TRAINING_FAILED, CANCELLED = (
    "QUEUED",
    "TRAINING",
    "TRAINED",
    "TRAINING_FAILED",
    "CANCELLED",
)

FINAL = frozenset({TRAINED, TRAINING_FAILED, CANCELLED})  # the run has ended
RUNNING = frozenset({QUEUED, TRAINING})  # what cancel stops, watch follows
RESUMABLE = frozenset({TRAINING_FAILED, CANCELLED})  # what resume takes
