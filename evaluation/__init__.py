"""Metrics and results files: frame/video-level binary metrics, DDP gathering, results.json."""
