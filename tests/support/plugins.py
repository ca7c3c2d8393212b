"""The environment that runs delegate with the worked examples of docs/examples as a user's own plugins."""

import os
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def plugin_env(module: str, **extra: str) -> dict[str, str]:
    """This environment with `module` of docs/examples imported as a plugin (DELEGATE_PLUGINS, on PYTHONPATH), the
    examples' config folder as the user's (DELEGATE_CONFIG_DIR), offline, and `extra` variables."""
    return dict(
        os.environ,
        DELEGATE_PLUGINS=module,
        DELEGATE_CONFIG_DIR=str(EXAMPLES / "conf"),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")])),
        **extra,
    )
