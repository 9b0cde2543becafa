"""segcli: semantic segmentation from the terminal (local engine or Clarifai's cloud)."""

__version__ = "0.1.0"
