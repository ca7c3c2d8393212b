"""Backends are found by the registry like strategies, each with its schema, and finding them loads no model SDK."""

import os
import subprocess
import sys

from delegate.models.backends import BACKENDS
from delegate.models.backends.openai_compatible import OpenAICompatibleModel, OpenAIModelConfig
from delegate.models.backends.transformers_local import TransformersModel, TransformersModelConfig


def test_each_backend_is_registered_with_its_schema():
    assert BACKENDS.names() == ["openai", "transformers"]
    assert (BACKENDS.get("openai"), BACKENDS.get("openai").schema) == (OpenAICompatibleModel, OpenAIModelConfig)
    assert (BACKENDS.get("transformers"), BACKENDS.get("transformers").schema) == (
        TransformersModel,
        TransformersModelConfig,
    )


def test_finding_the_backends_imports_no_model_sdk():
    script = (
        "import sys\n"
        "from delegate.models.backends import BACKENDS\n"
        "assert BACKENDS.names() == ['openai', 'transformers']\n"
        "print(sorted(m for m in ('openai', 'torch', 'transformers') if m in sys.modules))\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ, check=True)
    assert found.stdout.strip() == "[]"
