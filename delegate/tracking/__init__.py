"""MLflow tracking: one run per job, with the resolved config, metrics, artifacts and tags."""
