"""Runnable Hydra apps: `delegate-eval` (pipelines.evaluate)."""
