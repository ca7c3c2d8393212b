"""Model backends behind one async chat interface, for both roles (LLM and SLM)."""

from delegate.models.base import ChatModel, ChatRequest, ChatResponse, GenerateConfig, ToolCall
from delegate.models.registry import build_model

__all__ = ["ChatModel", "ChatRequest", "ChatResponse", "GenerateConfig", "ToolCall", "build_model"]
