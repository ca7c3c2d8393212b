"""Read API keys from the environment or a .env file, never from config, and never log them."""

import os
from pathlib import Path

from dotenv import dotenv_values

from delegate.errors import ConfigError


def read_api_key(env_var: str | None, role: str, required: bool) -> str | None:
    """The key named by `<role>.api_key_env`, from the environment first, then ./.env."""
    if env_var is None:
        return None
    key = os.environ.get(env_var) or dotenv_values(Path.cwd() / ".env").get(env_var)
    if not key and required:
        raise ConfigError(
            f"{role}.api_key_env: ${env_var} is not set; export it or add it to .env "
            f"(or point {role}.base_url at a local server)"
        )
    return key or None
