"""Reading interactions the way a person does: one-line summaries, prompt texts, answers.

Every command that shows an interaction (inspect, replay, diff, view, the OTel export)
goes through these helpers, so an interaction reads the same wherever it appears. They
accept anything a cassette may hold (hand-edited files included) and never raise on an
unexpected shape: the fallback is compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .._model import Interaction

__all__ = [
    "ELLIPSIS",
    "compact",
    "fmt_latency",
    "llm_model",
    "message_lines",
    "request_summary",
    "response_summary",
    "response_text",
    "shorten",
    "token_counts",
]

ELLIPSIS = "…"


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters; whitespace runs become one space."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    return flat[: max(width - 1, 0)] + ELLIPSIS


def compact(value: Any) -> str:
    """Single-line JSON, the fallback view of any value."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def fmt_latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.1f} ms"


def token_counts(inter: Interaction) -> tuple[int | None, int | None, int | None]:
    """(input, output, total) tokens, accepting OpenAI's names where a caller stored them."""
    usage = inter.usage or {}

    def num(*keys: str) -> int | None:
        for key in keys:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    tin = num("input_tokens", "prompt_tokens")
    tout = num("output_tokens", "completion_tokens")
    total = num("total_tokens")
    if total is None and (tin is not None or tout is not None):
        total = (tin or 0) + (tout or 0)
    return tin, tout, total


# --- prompts ---------------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    """Text of a message content: a string, or a list of parts (OpenAI, Anthropic, Gemini)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    pieces.append(text)
                elif part.get("type") in ("tool_use", "function_call"):
                    pieces.append(f"[{part.get('type')} {part.get('name', '')}]")
                elif part.get("type") == "tool_result":
                    pieces.append("[tool_result] " + _content_text(part.get("content")))
                elif "functionCall" in part or "functionResponse" in part:
                    pieces.append(compact(part))
                elif part.get("type"):
                    pieces.append(f"[{part.get('type')}]")
        return "\n".join(pieces)
    if content is None:
        return ""
    return compact(content)


def _message(message: Any) -> tuple[str, str]:
    if not isinstance(message, dict):
        return "message", _content_text(message)
    role = str(message.get("role") or message.get("type") or "message")
    text = _content_text(message.get("content", message.get("parts")))
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        names = [
            str(c.get("function", {}).get("name", "?")) if isinstance(c, dict) else "?"
            for c in calls
        ]
        text = (text + "\n" if text else "") + f"[tool_calls {', '.join(names)}]"
    return role, text


def message_lines(request: Any) -> list[tuple[str, str]]:
    """The conversation an llm request sends, as (role, text) pairs, system first."""
    if not isinstance(request, dict):
        return [("request", compact(request))]
    out: list[tuple[str, str]] = []
    for key in ("system", "instructions", "system_instruction"):
        value = request.get(key)
        if value:
            if isinstance(value, dict):
                value = value.get("parts", value)
            out.append(("system", _content_text(value)))
    for key in ("messages", "contents"):
        messages = request.get(key)
        if isinstance(messages, list):
            out.extend(_message(m) for m in messages)
    value = request.get("input")
    if isinstance(value, str):
        out.append(("user", value))
    elif isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            out.extend(("input", v) for v in value)
        else:
            out.extend(_message(m) for m in value)
    prompt = request.get("prompt")
    if isinstance(prompt, (str, list)):
        out.append(("prompt", _content_text(prompt)))
    return out


def llm_model(request: Any) -> str | None:
    model = request.get("model") if isinstance(request, dict) else None
    return model if isinstance(model, str) else None


# --- answers ---------------------------------------------------------------------------------


def _stream_text(events: Iterable[Any]) -> str | None:
    """Join the text deltas of a recorded SSE stream (OpenAI chat/responses, Anthropic)."""
    parts: list[str] = []
    seen = False
    for event in events:
        if not isinstance(event, dict):
            continue
        data = event.get("data", event)
        if not isinstance(data, dict):
            continue
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            if isinstance(delta, dict):
                seen = True
                if isinstance(delta.get("content"), str):
                    parts.append(delta["content"])
            continue
        delta = data.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("text"), str):
            seen = True
            parts.append(delta["text"])
        elif isinstance(delta, str) and str(data.get("type", "")).endswith("output_text.delta"):
            seen = True
            parts.append(delta)
    return "".join(parts) if seen else None


def _openai_choice(choice: Any) -> str | None:
    if not isinstance(choice, dict):
        return None
    message = choice.get("message")
    if isinstance(message, dict):
        return _message(message)[1]
    text = choice.get("text")
    return text if isinstance(text, str) else None


def response_text(response: Any) -> str | None:
    """The answer an llm response carries, as text; None when it has no recognisable text."""
    if isinstance(response, str):
        return response
    if isinstance(response, list):
        return _stream_text(response)
    if not isinstance(response, dict):
        return None
    for key in ("events", "stream", "chunks"):
        if isinstance(response.get(key), list):
            streamed = _stream_text(response[key])
            if streamed is not None:
                return streamed
    choices = response.get("choices")
    if isinstance(choices, list) and choices:
        texts = [t for t in (_openai_choice(c) for c in choices) if t is not None]
        return "\n".join(texts) if texts else None
    if isinstance(response.get("output_text"), str):
        return str(response["output_text"])
    output = response.get("output")
    if isinstance(output, list):
        return "\n".join(_message(item)[1] for item in output) or None
    if isinstance(response.get("content"), (list, str)):
        return _content_text(response["content"])
    candidates = response.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return _content_text((candidates[0].get("content") or {}).get("parts"))
    data = response.get("data")
    if isinstance(data, list) and data and all(
        isinstance(d, dict) and "embedding" in d for d in data
    ):
        return f"[{len(data)} embedding{'s' if len(data) != 1 else ''}]"
    for key in ("text", "message", "answer", "output"):
        if isinstance(response.get(key), str):
            return str(response[key])
    return None


# --- one-line summaries ---------------------------------------------------------------------


def _args_text(args: Any) -> str:
    if isinstance(args, dict):
        return ", ".join(f"{k}={compact(v)}" for k, v in args.items())
    return compact(args)


def request_summary(inter: Interaction, width: int = 60) -> str:
    req = inter.request
    if inter.kind == "llm":
        head = " ".join(
            str(x) for x in (req.get("endpoint"), llm_model(req)) if isinstance(x, str) and x
        )
        lines = message_lines(req)
        users = [text for role, text in lines if role in ("user", "input", "prompt")]
        last = users[-1] if users else (lines[-1][1] if lines else "")
        body = compact(" ".join(last.split())) if last else ""
        text = f"{head}: {body}" if head and body else head or body or compact(req)
    elif inter.kind == "http":
        text = f"{req.get('method', '?')} {req.get('url', '?')}"
    elif "name" in req and "args" in req:
        text = f"{req['name']}({_args_text(req['args'])})"
    else:
        text = compact(req)
    return shorten(text, width)


def response_summary(inter: Interaction, width: int = 50) -> str:
    if inter.error is not None:
        err = inter.error
        return shorten(f"raised {err.get('type', 'error')}: {err.get('message', '')}", width)
    resp = inter.response
    if inter.kind == "llm":
        text = response_text(resp)
        if text is not None:
            return shorten(compact(text) if not text.startswith("[") else text, width)
    if inter.kind == "http" and isinstance(resp, dict) and "status_code" in resp:
        body = next((resp[k] for k in ("json", "text") if k in resp), None)
        text = str(resp["status_code"]) + (" " + compact(body) if body is not None else "")
        return shorten(text, width)
    return shorten(compact(resp), width)
