"""Turn a prompt config and a question into chat messages."""

from typing import Any

from delegate.config.schema import PromptConfig

QUESTION_FIELD = "{question}"


def render_messages(prompt: PromptConfig, question: str) -> list[dict[str, Any]]:
    """System (if any) and user messages; `{question}` is the only placeholder, so LaTeX braces stay as written."""
    messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
    messages.append({"role": "user", "content": prompt.user.replace(QUESTION_FIELD, question)})
    return messages
