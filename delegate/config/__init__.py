"""Typed config schemas and their registration in Hydra's ConfigStore."""


def register_schemas() -> None:
    """Store every schema (models, data, tracking, and each strategy's) before Hydra composes."""
    from delegate.config.schema import register_base_schemas

    register_base_schemas()
    import delegate.strategies  # noqa: F401 - each strategy stores its own schema on import


__all__ = ["register_schemas"]
