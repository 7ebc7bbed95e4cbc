"""The tests' loopback OpenAI/Anthropic stand-in lives in the package (the demo uses it too)."""

from agenttape._standin import LLMServer, ReceivedRequest

__all__ = ["LLMServer", "ReceivedRequest"]
