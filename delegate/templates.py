"""Fill the named `{placeholders}` of a template from config (prompts, tool messages), leaving every other brace."""

import re
from typing import Any

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(template: str, /, **values: Any) -> str:
    """`{name}` replaced by each value given, in one pass (a value is never read as a template); other braces stay."""
    return PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)
