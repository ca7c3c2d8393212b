"""Turn a prompt config and a question into chat messages."""

import re
from typing import Any

from delegate.config.schema import PromptConfig

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(template: str, **values: Any) -> str:
    """`{name}` replaced by each value given, in one pass (a value is never read as a template); other braces stay."""
    return PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)


def render_messages(prompt: PromptConfig, question: str) -> list[dict[str, Any]]:
    """System (if any) and user messages; `{question}` is the only placeholder."""
    messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
    messages.append({"role": "user", "content": fill(prompt.user, question=question)})
    return messages
