"""One error hierarchy for segcli. The CLI entry turns these into one line + hint + exit code.

Every error carries a `hint` that names the command (or env var) that fixes it. Exit codes are
part of the script contract: they are documented in the README and tested.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # unexpected failure (a bug, or an error with no better class)
    USAGE = 2  # bad flags/arguments (Click's own code)
    NOT_FOUND = 3  # app / dataset / model / version / template / file does not exist
    CONFLICT = 4  # already exists (use --exist-ok), or state forbids the action
    INVALID_INPUT = 5  # bad data, bad params YAML, validation refused the upload
    CONFIG = 6  # missing configuration or credentials (PAT, user id, app)
    AUTH = 7  # the server rejected the credentials
    UNAVAILABLE = 8  # network / server unreachable after retries
    TRAINING_FAILED = 9  # a watched training ended TRAINING_FAILED (or the worker died)
    CANCELLED = 10  # a watched training was cancelled
    DEPENDENCY = 11  # an optional extra (torch, clarifai, av) is not installed
    ENVIRONMENT = 12  # a fault of the machine: disk full, read-only or foreign folder, corrupt store
    INTERRUPTED = 130  # Ctrl-C
    TERMINATED = 143  # SIGTERM (128 + 15): cleaned up like Ctrl-C


class SegcliError(Exception):
    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # Extra lines (e.g. every invalid item) printed after the message, before the hint.
        self.details = details or []


class NotFoundError(SegcliError):
    exit_code = ExitCode.NOT_FOUND


class ConflictError(SegcliError):
    exit_code = ExitCode.CONFLICT


class InvalidInputError(SegcliError):
    exit_code = ExitCode.INVALID_INPUT


class ConfigError(SegcliError):
    exit_code = ExitCode.CONFIG


class AuthError(SegcliError):
    exit_code = ExitCode.AUTH


class UnavailableError(SegcliError):
    exit_code = ExitCode.UNAVAILABLE


class TrainingFailedError(SegcliError):
    exit_code = ExitCode.TRAINING_FAILED


class CancelledError(SegcliError):
    exit_code = ExitCode.CANCELLED


class DependencyError(SegcliError):
    exit_code = ExitCode.DEPENDENCY


class EnvironmentFault(SegcliError):
    """The machine, not the command, is at fault (core/faults.py builds these): the message
    names the path, the hint the fix."""

    exit_code = ExitCode.ENVIRONMENT


def missing_extra(package: str, extra: str) -> DependencyError:
    return DependencyError(
        f"{package} is not installed",
        hint=f"pip install 'segcli[{extra}]'",
    )
