"""Parse the Hermes-style `<tool_call>{"name": ..., "arguments": ...}</tool_call>` blocks that Qwen2.5 models emit."""

import json
import re

from delegate.models.base import ToolCall
from delegate.templates import fill

# A block ends at its closing tag, at the next opening tag (an unclosed block), or at the end (cut-off generation).
TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|(?=<tool_call>)|$)", re.DOTALL)
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


def _arguments_object(arguments: str):
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def inline_tools(messages: list[dict], tools: list[dict] | None, tool_prompt: str) -> list[dict]:
    """For chat templates that ignore tools: describe them in the system message and write calls and results as Hermes text."""
    inlined: list[dict] = []
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            blocks = "".join(
                "\n<tool_call>\n"
                + json.dumps({"name": c["function"]["name"], "arguments": _arguments_object(c["function"]["arguments"])})
                + "\n</tool_call>"
                for c in message["tool_calls"]
            )
            inlined.append({"role": "assistant", "content": ((message.get("content") or "") + blocks).strip()})
        elif message["role"] == "tool":
            # Qwen2.5's own template shows tool results to the model this way.
            inlined.append({"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"})
        else:
            inlined.append(message)
    if tools:
        description = fill(tool_prompt, tools="\n".join(json.dumps(t) for t in tools))
        if inlined and inlined[0]["role"] == "system":
            inlined[0] = {"role": "system", "content": f"{inlined[0]['content']}\n\n{description}"}
        else:
            inlined.insert(0, {"role": "system", "content": description})
    return inlined
