"""agenttape.AgentTape as CrewAI's ``step_callback`` / ``task_callback``.

CrewAI itself is not installed: ``pip install --dry-run crewai`` (1.15.30) would downgrade
this venv's openai 3.57 -> 2.54 and pydantic 2.14 -> 2.12. CrewAI's callbacks are plain
callables, so these tests call the object the way CrewAI does, with stand-ins of exactly the
shapes it passes (``crewai/agents/parser.py``: ``AgentAction``/``AgentFinish`` dataclasses;
``crewai/tools/tool_types.py``: ``ToolResult``; ``crewai/tasks/task_output.py``: ``TaskOutput``):
a ``ToolResult`` first, then the ``AgentAction`` with ``result`` set, and an ``AgentFinish``
at the end of an agent's run; ``TaskOutput`` once per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

import agenttape


@dataclass
class AgentAction:
    thought: str
    tool: str
    tool_input: str
    text: str
    result: str | None = None


@dataclass
class AgentFinish:
    thought: str
    output: Any
    text: str


@dataclass
class ToolResult:
    result: str
    result_as_answer: bool = False


@dataclass
class TaskOutput:
    description: str
    raw: str
    agent: str
    expected_output: str | None = None
    json_dict: dict[str, Any] | None = None


def _crew_run(step: Any, task: Any) -> None:
    """What CrewAI's executor and task call, in order, for one tool step and one task."""
    action = AgentAction(thought="I should look it up", tool="search",
                         tool_input='{"query": "tide tables"}',
                         text="Action: search\nAction Input: {...}")
    step(ToolResult(result="high tide 14:02"))
    action.result = "high tide 14:02"
    step(action)
    step(AgentFinish(thought="done", output="High tide is at 14:02.", text="Final Answer: ..."))
    task(TaskOutput(description="Find high tide", raw="High tide is at 14:02.",
                    agent="Harbour master"))


def _stored(session: agenttape.Session) -> list[dict[str, Any]]:
    interactions: list[dict[str, Any]] = yaml.safe_load(
        session.path.read_text(encoding="utf-8"))["interactions"]
    return interactions


def test_tool_steps_are_recorded_under_the_tool_name() -> None:
    tape = agenttape.AgentTape()
    with agenttape.use_cassette("crew", mode="record") as session:
        _crew_run(tape, tape)
    (item,) = _stored(session)
    assert (item["kind"], item["boundary"]) == ("tool", "search")
    assert item["request"] == {"name": "search", "args": {"query": "tide tables"}}
    assert item["response"] == "high tide 14:02"
    assert item["metadata"] == {"source": "callback", "framework": "crewai"}


def test_state_true_adds_the_agent_answer_and_task_output_as_graph_state() -> None:
    tape = agenttape.AgentTape(state=True)
    with agenttape.use_cassette("crew_state", mode="record") as session:
        _crew_run(tape, tape)
    stored = _stored(session)
    assert [(i["kind"], i["boundary"]) for i in stored] == [
        ("tool", "search"), ("memory_write", "graph_state"), ("memory_write", "graph_state")]
    finish, task = stored[1], stored[2]
    assert finish["request"] == {"node": "agent_finish", "input": {"thought": "done"}}
    assert finish["response"] == "High tide is at 14:02."
    assert task["request"] == {"node": "task", "input": {"description": "Find high tide",
                                                         "agent": "Harbour master"}}
    assert task["response"] == {"raw": "High tide is at 14:02.", "json": None}


def test_a_parse_error_step_and_plain_text_input_are_handled() -> None:
    tape = agenttape.AgentTape()
    with agenttape.use_cassette("crew_odd", mode="record") as session:
        # CrewAI reports an unparsable LLM answer as an AgentAction with no tool.
        tape(AgentAction(thought="", tool="", tool_input="", text="Invalid Format"))
        tape(AgentAction(thought="", tool="shout", tool_input="not json", text="",
                         result="NOT JSON"))
    (item,) = _stored(session)
    assert item["request"] == {"name": "shout", "args": "not json"}


def test_outside_a_session_the_callable_returns_none() -> None:
    tape = agenttape.AgentTape(state=True)
    assert tape(ToolResult(result="x")) is None
    _crew_run(tape, tape)
