"""Turn a prompt config and a question into chat messages."""

from typing import Any

from delegate.config.schema import PromptConfig


def fill(template: str, **values: Any) -> str:
    """`{name}` replaced by each value given; every other brace (LaTeX, JSON) stays as written."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def render_messages(prompt: PromptConfig, question: str) -> list[dict[str, Any]]:
    """System (if any) and user messages; `{question}` is the only placeholder."""
    messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
    messages.append({"role": "user", "content": fill(prompt.user, question=question)})
    return messages
