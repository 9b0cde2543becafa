"""`from segcli.engine.train import train` (the worker's import) = segcli.engine.api.train."""
from segcli.engine.api import Sample, TrainJob, train

__all__ = ["Sample", "TrainJob", "train"]
