"""Hooks a strategy calls as it works, so a live view (the demo) can show each step; by default they do nothing."""

from delegate.models.base import ChatResponse, TextSink


class Observer:
    def llm_text_sink(self) -> TextSink | None:
        """Where the LLM's text for its next turn streams to; None: don't stream."""
        return None

    def llm_replied(self, response: ChatResponse) -> None:
        """The LLM finished a turn (its text and any tool calls)."""

    def delegating(self, call_id: str, question: str) -> None:
        """A sub-question is going to the SLM."""

    def slm_text_sink(self, call_id: str) -> TextSink | None:
        """Where the SLM's text for this call streams to; None: don't stream."""
        return None

    def tool_result(self, call_id: str, result: str) -> None:
        """What goes back to the LLM for this call (an answer or an error)."""

    def final_answer(self, text: str) -> None:
        """The attempt's final text."""


NO_OBSERVER = Observer()
