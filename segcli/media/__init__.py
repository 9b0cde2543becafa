"""Media files: video frames in and out through PyAV (ffmpeg inside the wheel). Below both
`render` (overlaid videos of predict) and `datasets` (the synthetic demo video), so neither
needs the other for it; imports no other segcli package."""
