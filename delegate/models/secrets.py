"""Read API keys from the environment or a .env file, never from config, and have every text redact them."""

import os
import re
from pathlib import Path

from dotenv import dotenv_values

from delegate.errors import ConfigError
from delegate.redaction import register_secret

ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_api_key(env_var: str | None, role: str, required: bool) -> str | None:
    """The key named by `<role>.api_key_env`, from the environment first, then ./.env; registered with the redactor,
    so that no text delegate writes or sends on can carry it."""
    if env_var is None:
        return None
    if not ENV_VAR_NAME.fullmatch(env_var):
        # Never echo the value: it may be the key itself, pasted where its variable's name belongs.
        raise ConfigError(
            f"{role}.api_key_env: not an environment variable name; give the variable's name (e.g. OPENAI_API_KEY), never the key"
        )
    key = os.environ.get(env_var) or dotenv_values(Path.cwd() / ".env").get(env_var)
    if not key and required:
        raise ConfigError(
            f"{role}.api_key_env: ${env_var} is not set; export it or add it to .env "
            f"(or point {role}.base_url at a local server)"
        )
    register_secret(key)
    return key or None
