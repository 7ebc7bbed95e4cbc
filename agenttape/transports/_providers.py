"""The table of known LLM APIs. Adding a provider is adding one entry to :data:`PROVIDERS`.

``hosts`` are exact ``host`` or ``host:port`` names, or ``*.suffix`` patterns. ``style`` names
the wire format, which decides how the path maps to an endpoint, where the model is, how
usage is read and which streamed event ends a stream (see :mod:`agenttape.transports.llm`).
"""

from __future__ import annotations

import attrs

__all__ = ["PROVIDERS", "Provider"]


@attrs.frozen
class Provider:
    name: str
    hosts: tuple[str, ...]
    style: str  # "openai" | "anthropic" | "gemini" | "ollama"


PROVIDERS: tuple[Provider, ...] = (
    Provider("openai", ("api.openai.com",), "openai"),
    Provider(
        "azure_openai",
        ("*.openai.azure.com", "*.cognitiveservices.azure.com", "*.services.ai.azure.com"),
        "openai",
    ),
    Provider("anthropic", ("api.anthropic.com",), "anthropic"),
    Provider("gemini", ("generativelanguage.googleapis.com",), "gemini"),
    Provider("mistral", ("api.mistral.ai",), "openai"),
    Provider("groq", ("api.groq.com",), "openai"),
    Provider("openrouter", ("openrouter.ai",), "openai"),
    Provider("together", ("api.together.xyz", "api.together.ai"), "openai"),
    Provider("deepseek", ("api.deepseek.com",), "openai"),
    Provider("xai", ("api.x.ai",), "openai"),
    Provider("fireworks", ("api.fireworks.ai",), "openai"),
    Provider("perplexity", ("api.perplexity.ai",), "openai"),
    Provider("ollama", ("localhost:11434", "127.0.0.1:11434", "[::1]:11434"), "ollama"),
)
