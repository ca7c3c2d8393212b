"""Turn a prompt config and a question into chat messages."""

from typing import Any

from delegate.config.schema import PromptConfig
from delegate.templates import fill


def render_messages(prompt: PromptConfig, question: str) -> list[dict[str, Any]]:
    """System (if any) and user messages; `{question}` is the only placeholder."""
    messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
    messages.append({"role": "user", "content": fill(prompt.user, question=question)})
    return messages
