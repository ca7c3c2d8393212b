"""Parse the Hermes-style `<tool_call>{"name": ..., "arguments": ...}</tool_call>` blocks that Qwen2.5 models emit."""

import json
import re

from delegate.models.base import ToolCall

TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
# The name of a call whose block is not valid JSON: the caller answers it with an error, like any unknown tool.
MALFORMED_CALL_NAME = "<malformed tool call>"


def parse_tool_calls(text: str, id_prefix: str = "call") -> tuple[str, tuple[ToolCall, ...]]:
    """The text with every block removed, and one ToolCall per block; arguments are re-serialized JSON text."""
    calls = []
    for index, match in enumerate(TOOL_CALL_BLOCK.finditer(text)):
        call_id = f"{id_prefix}_{index}"
        try:
            payload = json.loads(match.group(1))
            name = payload["name"]
            arguments = payload.get("arguments", {})
            if not isinstance(name, str):
                raise TypeError("name is not a string")
        except (ValueError, KeyError, TypeError, AttributeError):
            calls.append(ToolCall(id=call_id, name=MALFORMED_CALL_NAME, arguments=match.group(1)))
            continue
        calls.append(ToolCall(id=call_id, name=name, arguments=arguments if isinstance(arguments, str) else json.dumps(arguments)))
    content = TOOL_CALL_BLOCK.sub("", text).strip() if calls else text
    return content, tuple(calls)
