"""delegate: let a big LLM reason and hand easy sub-tasks to a small model; measure what it costs."""

__version__ = "0.1.0"
