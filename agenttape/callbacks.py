"""``AgentTape``: a record-only callback object for frameworks that report through hooks.

One plain object serves LangChain/LangGraph (``callbacks=[...]``), LlamaIndex (its legacy
``CallbackManager`` and the instrumentation dispatcher) and CrewAI (``step_callback`` /
``task_callback``). It imports none of them: each framework duck-types its handlers, and the
attribute tables below are what their managers read.

One exception to duck typing: LangChain validates the ``callbacks=`` *field* of its models
and tools (``ChatOpenAI(callbacks=[...])``) as ``BaseCallbackHandler`` instances. So when
LangChain is already imported, ``AgentTape()`` builds its instance from a subclass that also
derives from LangChain's base handler (looked up in ``sys.modules``, never imported here).

Frameworks call hooks around work they do themselves, so nothing here can serve a replay:
crossings are *observed* (``Engine.begin_observed``) and recorded in modes that write. Each
run opens a :class:`~agenttape.engine.Span`; when a transport recorded the same LLM call
inside it, the transport's interaction stands and only gets ``metadata.callback``.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import _callback_convert as cv
from .engine import _error_dict, inside_boundary, open_span
from .errors import StreamingNotRecordedWarning
from .session import active_session

if TYPE_CHECKING:
    from .engine import Engine, Pending, Span
    from .session import Session

__all__ = ["AgentTape"]

_log = logging.getLogger("agenttape")

F = TypeVar("F", bound=Callable[..., Any])

STATE_BOUNDARY = "graph_state"
# Which recorded kinds stand for a callback run of a kind (an LLM call a transport saw as
# plain HTTP is still that call). Tools and retrievals must also have the same name, state
# writes the same request (LlamaIndex reports a query through both of its event systems).
_SAME_CALL = {"llm": ("llm", "http"), "tool": ("tool",), "retrieval": ("retrieval",),
              "memory_write": ("memory_write",)}
# LlamaIndex event types never recorded: skipped by its manager before reaching us.
_LI_IGNORED = ("chunking", "node_parsing", "embedding", "templating", "tree", "reranking",
               "exception", "synthesize", "sub_question", "agent_step")


def _guarded(method: F) -> F:
    """A hook never raises into the framework: a failure is one warning, the run goes on."""

    @functools.wraps(method)
    def hook(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # recording must never break the user's run
            _warn(RuntimeWarning(
                f"agenttape.AgentTape: {method.__name__} failed and recorded nothing for "
                f"this event ({type(exc).__name__}: {exc}); the framework run goes on"))
            return None

    return cast("F", hook)


def _warn(warning: Warning, stacklevel: int = 3) -> None:
    try:
        warnings.warn(warning, stacklevel=stacklevel)
    except Warning:
        # Warnings turned into errors (-W error) must still not reach the framework.
        _log.warning("%s", warning)


class _Run:
    """One framework run between its start and end hooks."""

    __slots__ = ("boundary", "engine", "framework", "kind", "pending", "run_name", "session",
                 "span", "streamed", "tokens")

    def __init__(self, session: Session, engine: Engine, pending: Pending, span: Span,
                 kind: str, boundary: str, framework: str, run_name: str) -> None:
        self.session, self.engine, self.pending, self.span = session, engine, pending, span
        self.kind, self.boundary = kind, boundary
        self.framework, self.run_name = framework, run_name
        self.streamed = False
        self.tokens: list[str] = []


class AgentTape:
    """Record ``llm``, ``tool`` and ``retrieval`` crossings a framework reports.

    Pass one instance as a LangChain/LangGraph callback (``callbacks=[AgentTape()]``), as a
    LlamaIndex handler (``CallbackManager([tape])`` or
    ``get_dispatcher().add_event_handler(tape)``), or as CrewAI's ``step_callback`` /
    ``task_callback``. It records into the active session and does nothing outside one.

    Record-only: replay still goes through the transports. During replay it only observes
    (the crossings show in ``engine.timeline()``). ``tag`` labels every interaction it
    records; ``state=True`` also records chain/graph node inputs and outputs (and CrewAI
    task outputs) as ``memory_write`` interactions at boundary ``graph_state``.
    """

    # -- what LangChain's callback manager reads on every handler --------------------------
    raise_error = False
    # Inline means "in the caller's thread and context", not a worker thread: a transport's
    # recording of the same call then lands inside this run's span (de-duplication).
    run_inline = True
    ignore_llm = False
    ignore_chat_model = False
    ignore_retriever = False
    ignore_agent = False  # LangChain routes tool events through this flag
    ignore_retry = True
    ignore_custom_event = True

    def __new__(cls, *args: Any, **kwargs: Any) -> AgentTape:
        if cls is AgentTape:
            cls = _with_langchain_base()
        return super().__new__(cls)

    def __init__(self, *, tag: str | None = None, state: bool = False) -> None:
        self.tag = tag
        self.state = state
        self._runs: dict[Hashable, _Run] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AgentTape(tag={self.tag!r}, state={self.state!r})"

    @property
    def ignore_chain(self) -> bool:
        return not self.state

    # -- what LlamaIndex's CallbackManager reads ---------------------------------------------
    @property
    def event_starts_to_ignore(self) -> tuple[str, ...]:
        return _LI_IGNORED if self.state else (*_LI_IGNORED, "query")

    @property
    def event_ends_to_ignore(self) -> tuple[str, ...]:
        return self.event_starts_to_ignore

    # -- the recording core -------------------------------------------------------------
    def _begin(self, key: Hashable, kind: str, boundary: str, request: dict[str, Any],
               framework: str, run_name: str | None = None) -> None:
        session = active_session()
        if session is None or session.engine is None or inside_boundary():
            # Inside another boundary's real body only the outer boundary is recorded.
            return
        engine = session.engine
        pending = engine.begin_observed(kind, boundary, request,
                                        tags=[self.tag] if self.tag else ())
        run = _Run(session, engine, pending, open_span(), kind, boundary, framework,
                   run_name or boundary)
        with self._lock:
            for stale in [k for k, r in self._runs.items() if not r.session.active]:
                del self._runs[stale]
            self._runs[key] = run

    def _run(self, key: Hashable) -> _Run | None:
        with self._lock:
            return self._runs.get(key)

    def _end(self, key: Hashable, *, response: Any = None,
             error: BaseException | dict[str, Any] | None = None,
             usage: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> None:
        with self._lock:
            run = self._runs.pop(key, None)
        if run is None:
            return
        run.span.close()
        same = _SAME_CALL.get(run.kind)
        if same is not None and run.engine.claim(
            run.span, same, {"callback": {"framework": run.framework, "run_name": run.run_name}},
            owner=run.pending.position,
            boundary=None if run.kind == "llm" else run.boundary,
            match_key=run.pending.match_key if run.kind == "memory_write" else None,
        ):
            run.engine.discard(run.pending)
            return
        metadata: dict[str, Any] = {"source": "callback", "framework": run.framework}
        if run.streamed:
            metadata["stream_captured"] = False
        if extra:
            metadata.update(extra)
        if error is not None:
            if run.tokens:
                metadata["partial_response"] = "".join(run.tokens)
            if isinstance(error, BaseException):
                error = _error_dict(error)
            run.pending.finish(error=error, usage=usage, metadata=metadata)
        else:
            run.pending.finish(response=response, usage=usage, metadata=metadata)
        if run.streamed and run.pending.records:
            _warn(StreamingNotRecordedWarning(
                f"agenttape: a {run.framework} stream from {run.boundary} was seen only by the "
                "AgentTape callback; its text is recorded but not its stream "
                "(metadata.stream_captured: false), so it cannot be replayed as a stream. "
                "Give the model client an agenttape transport to capture it"), stacklevel=5)

    def _token(self, key: Hashable, token: Any) -> None:
        run = self._run(key)
        if run is not None:
            run.streamed = True
            if isinstance(token, str):
                run.tokens.append(token)

    # -- LangChain / LangGraph ------------------------------------------------------------
    @_guarded
    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: list[list[Any]],
                            *, run_id: Any, metadata: dict[str, Any] | None = None,
                            **kwargs: Any) -> None:
        boundary, run_name, request = _lc_llm(serialized, metadata, kwargs)
        request["messages"] = cv.plain(messages[0] if len(messages) == 1 else messages)
        self._begin(("lc", run_id), "llm", boundary, request, "langchain", run_name)

    @_guarded
    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: list[str], *,
                     run_id: Any, metadata: dict[str, Any] | None = None,
                     **kwargs: Any) -> None:
        boundary, run_name, request = _lc_llm(serialized, metadata, kwargs)
        request["prompt"] = prompts[0] if len(prompts) == 1 else list(prompts)
        self._begin(("lc", run_id), "llm", boundary, request, "langchain", run_name)

    @_guarded
    def on_llm_new_token(self, token: Any, *, run_id: Any, **kwargs: Any) -> None:
        self._token(("lc", run_id), token)

    @_guarded
    def on_llm_end(self, response: Any, *, run_id: Any, **kwargs: Any) -> None:
        key = ("lc", run_id)
        shown = cv.lc_llm_response(response)
        run = self._run(key)
        if run is not None and run.tokens and shown == {"generations": []}:
            shown = {"text": "".join(run.tokens)}
        self._end(key, response=shown, usage=cv.lc_usage(response))

    @_guarded
    def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        self._end(("lc", run_id), error=error)

    @_guarded
    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *,
                      run_id: Any, inputs: dict[str, Any] | None = None,
                      **kwargs: Any) -> None:
        name = str((serialized or {}).get("name") or kwargs.get("name") or "tool")
        args = cv.plain(inputs) if inputs is not None else input_str
        self._begin(("lc", run_id), "tool", name, {"name": name, "args": args}, "langchain")

    @_guarded
    def on_tool_end(self, output: Any, *, run_id: Any, **kwargs: Any) -> None:
        extra = None
        if type(output).__name__ == "ToolMessage" and hasattr(output, "content"):
            # Invoked with a tool call: the tool's own value is the message content.
            if getattr(output, "status", None) == "error":
                extra = {"tool_status": "error"}
            output = output.content
        self._end(("lc", run_id), response=cv.plain(output), extra=extra)

    @_guarded
    def on_tool_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        self._end(("lc", run_id), error=error)

    @_guarded
    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *,
                           run_id: Any, metadata: dict[str, Any] | None = None,
                           **kwargs: Any) -> None:
        name = str(kwargs.get("name") or (serialized or {}).get("name")
                   or (metadata or {}).get("ls_retriever_name") or "retriever")
        request = {"name": name, "args": {"query": cv.plain(query)}}
        self._begin(("lc", run_id), "retrieval", name, request, "langchain")

    @_guarded
    def on_retriever_end(self, documents: Any, *, run_id: Any, **kwargs: Any) -> None:
        self._end(("lc", run_id), response=cv.plain(list(documents)))

    @_guarded
    def on_retriever_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        self._end(("lc", run_id), error=error)

    @_guarded
    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: Any,
                       tags: list[str] | None = None, **kwargs: Any) -> None:
        if not self.state or "langgraph:hidden" in (tags or ()):
            return  # LangGraph's own plumbing (channel writes, routing) is not state
        node = str(kwargs.get("name") or (serialized or {}).get("name") or "chain")
        request = {"node": node, "input": cv.plain(inputs)}
        self._begin(("lc", run_id), "memory_write", STATE_BOUNDARY, request, "langchain", node)

    @_guarded
    def on_chain_end(self, outputs: Any, *, run_id: Any, **kwargs: Any) -> None:
        self._end(("lc", run_id), response=cv.plain(outputs))

    @_guarded
    def on_chain_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        self._end(("lc", run_id), error=error)

    # Reported but not boundaries: agent decisions are in the LLM's answer, the rest is chatter.
    def on_agent_action(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_agent_finish(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_text(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_retry(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_custom_event(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_stream_event(self, *args: Any, **kwargs: Any) -> None:
        return None

    # -- LlamaIndex: legacy CallbackManager ---------------------------------------------
    @_guarded
    def _li_start(self, event_type: Any, payload: dict[Any, Any] | None,
                  event_id: str) -> None:
        kind = str(getattr(event_type, "value", event_type))
        data = _li_payload(payload)
        key = ("li", event_id)
        if kind == "llm":
            boundary, request = _li_llm(data.get("serialized"), data.get("messages"),
                                        data.get("formatted_prompt"),
                                        data.get("additional_kwargs"))
            self._begin(key, "llm", boundary, request, "llama_index")
        elif kind == "retrieve":
            name = _li_span_owner() or "retriever"
            request = {"name": name, "args": {"query": cv.plain(data.get("query_str"))}}
            self._begin(key, "retrieval", name, request, "llama_index")
        elif kind == "function_call":
            name = str(getattr(data.get("tool"), "name", None) or "tool")
            request = {"name": name, "args": cv.crew_tool_input(data.get("function_call"))}
            self._begin(key, "tool", name, request, "llama_index")
        elif kind == "query" and self.state:
            request = {"node": "query", "input": cv.plain(data.get("query_str"))}
            self._begin(key, "memory_write", STATE_BOUNDARY, request, "llama_index", "query")

    def on_event_start(self, event_type: Any, payload: dict[Any, Any] | None = None,
                       event_id: str = "", parent_id: str = "", **kwargs: Any) -> str:
        self._li_start(event_type, payload, event_id)
        return event_id

    @_guarded
    def on_event_end(self, event_type: Any, payload: dict[Any, Any] | None = None,
                     event_id: str = "", **kwargs: Any) -> None:
        key = ("li", event_id)
        if self._run(key) is None:
            return
        data = _li_payload(payload)
        if isinstance(data.get("exception"), BaseException):
            self._end(key, error=data["exception"])
            return
        kind = str(getattr(event_type, "value", event_type))
        if kind == "llm":
            response = data.get("response", data.get("completion"))
            if getattr(response, "delta", None) is not None:
                self._token(key, None)  # the answer came as a stream
            self._end(key, response=cv.chat_response(response), usage=cv.li_usage(response))
        elif kind == "retrieve":
            self._end(key, response=cv.plain(list(data.get("nodes") or [])))
        elif kind == "function_call":
            self._end(key, response=cv.plain(data.get("function_call_response")))
        else:
            self._end(key, response=cv.plain(data.get("response")))

    def start_trace(self, trace_id: str | None = None) -> None:
        return None

    def end_trace(self, trace_id: str | None = None,
                  trace_map: dict[str, list[str]] | None = None) -> None:
        return None

    # -- LlamaIndex: instrumentation dispatcher -----------------------------------------
    @_guarded
    def handle(self, event: Any, **kwargs: Any) -> None:
        """``get_dispatcher().add_event_handler(tape)``: events pair up by ``span_id``."""
        span_id = getattr(event, "span_id", None)
        if span_id is None:
            return
        key = ("lid", span_id)
        name = type(event).__name__
        if name in ("LLMChatStartEvent", "LLMCompletionStartEvent"):
            boundary, request = _li_llm(event.model_dict, getattr(event, "messages", None),
                                        getattr(event, "prompt", None),
                                        event.additional_kwargs)
            self._begin(key, "llm", boundary, request, "llama_index")
        elif name in ("LLMChatInProgressEvent", "LLMCompletionInProgressEvent"):
            self._token(key, getattr(event.response, "delta", None))
        elif name in ("LLMChatEndEvent", "LLMCompletionEndEvent"):
            response = event.response
            self._end(key, response=cv.chat_response(response), usage=cv.li_usage(response))
        elif name == "RetrievalStartEvent":
            owner = _owner_of(span_id) or "retriever"
            request = {"name": owner, "args": {"query": cv.plain(event.str_or_query_bundle)}}
            self._begin(key, "retrieval", owner, request, "llama_index")
        elif name == "RetrievalEndEvent":
            self._end(key, response=cv.plain(list(event.nodes)))
        elif name == "QueryStartEvent" and self.state:
            request = {"node": "query", "input": cv.plain(event.query)}
            self._begin(key, "memory_write", STATE_BOUNDARY, request, "llama_index", "query")
        elif name == "QueryEndEvent":
            self._end(key, response=cv.plain(event.response))
        elif name == "ExceptionEvent" and isinstance(getattr(event, "exception", None),
                                                     BaseException):
            self._end(key, error=event.exception)
        elif name == "SpanDropEvent":  # the span raised; only the text is reported
            self._end(key, error={"message": str(getattr(event, "err_str", ""))})

    async def ahandle(self, event: Any, **kwargs: Any) -> None:
        self.handle(event, **kwargs)

    # -- CrewAI: step_callback / task_callback ------------------------------------------
    @_guarded
    def __call__(self, output: Any) -> None:
        """CrewAI passes each step (``AgentAction``/``ToolResult``/``AgentFinish``) or a
        finished task (``TaskOutput``)."""
        key = ("crewai", id(output))
        if hasattr(output, "tool") and hasattr(output, "tool_input"):
            # An AgentAction reaches step_callback after its tool ran, with `result` set.
            if not output.tool or getattr(output, "result", None) is None:
                return
            name = str(output.tool)
            request = {"name": name, "args": cv.crew_tool_input(output.tool_input)}
            self._begin(key, "tool", name, request, "crewai")
            self._end(key, response=cv.plain(output.result))
        elif not self.state:
            return
        elif hasattr(output, "raw") and hasattr(output, "description"):
            request = {"node": "task", "input": {
                "description": output.description, "agent": cv.plain(getattr(output, "agent",
                                                                             None))}}
            self._begin(key, "memory_write", STATE_BOUNDARY, request, "crewai", "task")
            self._end(key, response={"raw": output.raw,
                                     "json": cv.plain(getattr(output, "json_dict", None))})
        elif hasattr(output, "output") and hasattr(output, "thought"):
            request = {"node": "agent_finish", "input": {"thought": output.thought}}
            self._begin(key, "memory_write", STATE_BOUNDARY, request, "crewai", "agent_finish")
            self._end(key, response=cv.plain(output.output))
        # A bare ToolResult names no tool; the AgentAction that follows it does.


_langchain_flavour: dict[type, type[AgentTape]] = {}


def _with_langchain_base() -> type[AgentTape]:
    """AgentTape, or once LangChain is imported, AgentTape that is also its base handler.

    AgentTape comes first in the MRO, so every attribute LangChain reads is still ours.
    """
    module = sys.modules.get("langchain_core.callbacks.base")
    base = getattr(module, "BaseCallbackHandler", None)
    if not isinstance(base, type):
        return AgentTape
    flavour = _langchain_flavour.get(base)
    if flavour is None:
        flavour = type("AgentTape", (AgentTape, base), {
            "__module__": AgentTape.__module__, "__qualname__": "AgentTape",
            "__doc__": AgentTape.__doc__})
        _langchain_flavour[base] = flavour
    return flavour


# -- request builders ----------------------------------------------------------------------

def _lc_llm(serialized: dict[str, Any] | None, metadata: dict[str, Any] | None,
            kwargs: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(boundary, run name, request)`` for a LangChain model run."""
    meta = metadata or {}
    ident = (serialized or {}).get("id")
    class_name = (serialized or {}).get("name") or (ident[-1] if isinstance(ident, list)
                                                    and ident else None)
    params = {k: v for k, v in (kwargs.get("invocation_params") or {}).items()
              if not str(k).startswith("_") and v is not None
              and k not in ("stream", "streaming")}  # how the answer travels, not what it is
    model = meta.get("ls_model_name") or params.pop("model", None) or params.get("model_name")
    params.pop("model", None)
    params.pop("model_name", None)
    boundary = str(meta.get("ls_provider") or class_name or "llm")
    request: dict[str, Any] = {}
    if model:
        request["model"] = model
    if params:
        request["params"] = cv.plain(params)
    return boundary, str(kwargs.get("name") or class_name or boundary), request


def _li_payload(payload: dict[Any, Any] | None) -> dict[str, Any]:
    # EventPayload is a str enum hashed by member name: look keys up by their value.
    return {str(getattr(k, "value", k)): v for k, v in (payload or {}).items()}


def _li_llm(model: Any, messages: Any, prompt: Any, params: Any) -> tuple[str, dict[str, Any]]:
    model = model if isinstance(model, dict) else {}
    boundary = str(model.get("class_name") or "llm")
    request: dict[str, Any] = {}
    name = model.get("model") or model.get("model_name")
    if name and name != "unknown":
        request["model"] = name
    if messages is not None:
        request["messages"] = cv.plain(list(messages))
    else:
        request["prompt"] = prompt
    if params:
        request["params"] = cv.plain(params)
    return boundary, request


def _owner_of(span_id: str) -> str | None:
    """The class of a LlamaIndex span id (``"VectorIndexRetriever.retrieve-<uuid>"``)."""
    head = span_id.split("-", 1)[0]
    return head.split(".", 1)[0] or None


def _li_span_owner() -> str | None:
    """The class whose dispatcher span is active (legacy events do not name their caller).

    Read from LlamaIndex's context variable only if LlamaIndex is already imported.
    """
    module = sys.modules.get("llama_index_instrumentation.span")
    var = getattr(module, "active_span_id", None)
    value = var.get() if var is not None else None
    return _owner_of(value) if isinstance(value, str) else None
