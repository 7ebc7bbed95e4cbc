"""Secrets never reach the disk: every byte under the cassette folder is scanned.

Keys go out the way real code sends them (SDK auth headers, ``?key=``, ``?api_key=``, JSON
and form bodies, ``user:key@host`` URLs, cookies, binary bodies) and come back the way real
services and code return them (an echo of the request, a streamed tool call that cuts the
key across events, an exception message, a connection error naming the URL, a binary
blob). The recording must hold none of them, in any encoding, and must still replay
offline; ``agenttape validate`` must fail on one planted by hand.
"""

from __future__ import annotations

import base64
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anthropic
import httpx
import openai
import pytest
import requests
from conftest import SECRET_API_KEY
from llm_server import LLMServer

import agenttape
from agenttape.cli import main
from agenttape.config import Config, RedactConfig
from agenttape.redaction import Redactor

KEY = SECRET_API_KEY  # OpenAI-shaped
ANTHROPIC_KEY = "sk-ant-api03-Q7mZt2Lx9Vb4Nc8Rw1Ks6Jd3Hf5Gp0Ya2Ue7Io4"
GOOGLE_KEY = "AIzaSyQ3kT8vLm2Np5Rx7Wz9Bc4Df6Gh1Jk0Mn8"  # AIza + 35
CUSTOM = "custom-4f9a2c7e1b3d"  # only a configured regex knows it
PASSWORD = "hunter2-Correct-Horse"  # no pattern: only denylisted keys protect it
HEADER_VALUE = "plain-header-value-7Q2"  # under a configured denylist header
TOKEN = "tok-Zx81-Qw42-Er63"  # under "token"
COOKIE = "sess-Vb55-Nm66"
QUERY_PLAIN = "qp-Lk90-Jh12"  # ?api_key=<this> in a URL quoted by an error message
EMAIL = "alice.secret@example.com"
BLOB_SIZE = 6000 + len(KEY) + 1 + len(GOOGLE_KEY) + 3000
SECRETS = [KEY, ANTHROPIC_KEY, GOOGLE_KEY, CUSTOM, PASSWORD, HEADER_VALUE, TOKEN, COOKIE,
           QUERY_PLAIN, EMAIL]

TOOLS_OPENAI = [{"type": "function", "function": {
    "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
TOOLS_ANTHROPIC = [{"name": "lookup", "description": "look it up", "input_schema": {
    "type": "object", "properties": {"q": {"type": "string"}}}}]


def _config(server: LLMServer) -> Config:
    return Config(cassette_dir=Path.cwd() / "cassettes", llm_hosts=[f"127.0.0.1:{server.port}"],
                  redact=RedactConfig(regexes=[r"custom-[0-9a-f]{12}"],
                                      denylist=["x-custom-auth"]))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@agenttape.tool
def leaky_tool(q: str) -> str:
    raise PermissionError(f"auth failed for {KEY} (password={PASSWORD}); mail {EMAIL}")


@agenttape.tool
def secret_blob(size: int) -> bytes:
    """A binary result over the assets threshold with a key inside: it goes to a sidecar."""
    return b"\x00\xff" * size + KEY.encode() + b"\xfe" + GOOGLE_KEY.encode() + b"\x00" * size


@agenttape.tool
def chatty_tool(q: str) -> dict[str, Any]:
    return {"api_key": KEY, "note": f"the google key is {GOOGLE_KEY}", "q": q}


def drive(server: LLMServer, dead_port: int) -> list[Any]:
    """One agent run leaking every way we know; each step's result or exception type."""
    out: list[Any] = []

    def step(call: Any) -> None:
        try:
            out.append(call())
        except Exception as exc:
            out.append(type(exc))

    url = server.url
    with openai.OpenAI(api_key=KEY, base_url=server.openai_base_url, max_retries=0,
                       http_client=agenttape.http_client()) as oai:
        step(lambda: oai.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"remember {KEY}"}],
        ).choices[0].message.content)

        def streamed_tool_call() -> str:
            stream = oai.chat.completions.create(
                model="gpt-test", stream=True, tools=TOOLS_OPENAI,
                messages=[{"role": "user", "content": f"lookup {KEY} and {GOOGLE_KEY}"}])
            return "".join(chunk.choices[0].delta.tool_calls[0].function.arguments or ""
                           for chunk in stream
                           if chunk.choices and chunk.choices[0].delta.tool_calls)

        step(streamed_tool_call)
    with anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=server.anthropic_base_url,
                             max_retries=0, http_client=agenttape.http_client()) as claude:

        def anthropic_stream() -> Any:
            with claude.messages.stream(
                    model="claude-test", max_tokens=64, tools=TOOLS_ANTHROPIC,  # type: ignore[arg-type]
                    messages=[{"role": "user", "content": f"lookup {ANTHROPIC_KEY}"}]) as s:
                return [block.model_dump() for block in s.get_final_message().content]

        step(anthropic_stream)
    with httpx.Client(transport=agenttape.transport()) as http:
        step(lambda: http.get(
            f"{url}/echo?key={GOOGLE_KEY}&api_key={CUSTOM}&q=1",
            headers={"x-custom-auth": HEADER_VALUE, "X-Api-Key": KEY,
                     "Authorization": f"Bearer {KEY}"}).json()["query"])
        step(lambda: http.post(f"{url}/echo", json={
            "api_key": KEY, "password": PASSWORD, "nested": {"token": TOKEN},
            "note": f"write to {EMAIL}"}).json()["body"])
        step(lambda: http.get(url.replace("http://", f"http://user:{KEY}@") + "/echo").status_code)
        step(lambda: http.post(f"{url}/echo", content=b"\xff\xfe" + KEY.encode() + b" " +
                               CUSTOM.encode(), headers={"content-type": "application/x-blob"}
                               ).status_code)
        step(lambda: http.get(f"{url}/status/401",
                              headers={"authorization": f"Bearer {KEY}"}).status_code)
    with agenttape.requests_session() as req:
        step(lambda: req.get(f"{url}/echo?key={GOOGLE_KEY}", headers={
            "Authorization": f"Bearer {KEY}", "Cookie": f"session={COOKIE}"}).status_code)
        step(lambda: req.post(f"{url}/echo", data={"api_key": CUSTOM, "password": PASSWORD,
                                                   "user": "me"}).json()["body"])
        step(lambda: req.get(url.replace("http://", f"http://user:{PASSWORD}@") + "/echo"
                             ).status_code)
        # The connection error's message quotes the URL, query string and all.
        step(lambda: req.get(f"http://127.0.0.1:{dead_port}/x?api_key={QUERY_PLAIN}&"
                             f"token={TOKEN}", timeout=2))
    step(lambda: leaky_tool("x"))
    step(lambda: len(secret_blob(3000)))
    step(lambda: chatty_tool("y"))
    return out


def _all_strings(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield "key", key
            if key == "body_b64" and isinstance(item, str):
                yield "binary", base64.b64decode(item)
            else:
                yield from _all_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_strings(item)
    elif isinstance(value, str):
        yield "text", value


def _forms(secret: str) -> list[bytes]:
    """Ways a secret could be written: as is, URL-encoded, and fragments of it (a key cut
    across stream events leaves pieces, which must not survive either)."""
    raw = secret.encode()
    pieces = {raw[i:i + 10] for i in range(0, max(1, len(raw) - 9))}
    return [raw, quote(secret, safe="").encode(), *pieces]


def _scan(folder: Path) -> tuple[int, list[str]]:
    """Every byte of every file under ``folder``, and every decoded binary body."""
    found: list[str] = []
    scanned = 0
    blobs: list[tuple[str, bytes]] = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            blobs.append((str(path.relative_to(folder)), path.read_bytes()))
            if path.suffix in (".yaml", ".json"):
                cassette = agenttape.read_cassette(path)  # assets inlined as body_b64
                for kind, value in _all_strings(cassette.to_dict()):
                    if kind == "binary":
                        blobs.append((f"{path.name} (decoded body_b64)", value))
    for where, blob in blobs:
        scanned += len(blob)
        for secret in SECRETS:
            if any(form in blob for form in _forms(secret)):
                found.append(f"{secret[:6]}... in {where}")
    return scanned, found


@pytest.fixture
def recording(llm_server: LLMServer) -> Iterator[tuple[Config, Path, list[Any], int]]:
    config = _config(llm_server)
    dead = _closed_port()
    with agenttape.use_cassette("leaky", mode="record", config=config) as session:
        outcomes = drive(llm_server, dead)
    yield config, session.path, outcomes, dead


def test_nothing_secret_reaches_the_disk_and_the_recording_still_replays(
    llm_server: LLMServer, recording: tuple[Config, Path, list[Any], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, path, live, dead = recording
    # The run did leak: the live answers carry the keys the recording must not.
    assert KEY in live[0] and live[12] is PermissionError and live[13] == BLOB_SIZE
    assert live[11] is requests.exceptions.ConnectionError
    assert any(KEY in str(item) for item in live[1:3])
    assert (path.parent / "leaky.assets").is_dir(), "the blob should have gone to a sidecar"

    scanned, found = _scan(path.parent)
    assert not found, found
    assert scanned > 10_000
    files = sum(1 for p in path.parent.rglob("*") if p.is_file())
    with capsys.disabled():  # the figure docs/security.md quotes (shown with -s)
        print(f"\nsecrets: {scanned} bytes scanned in {files} files and their decoded "
              f"bodies, for {len(SECRETS)} secrets in {sum(map(len, map(_forms, SECRETS)))} "
              "forms")

    assert Redactor.from_config(config.redact).find_secrets(
        agenttape.read_cassette(path).to_dict()) == []
    assert main(["validate", str(path)]) == 0
    capsys.readouterr()

    # Redacted on both sides, the requests still match: the recording replays offline.
    hits = llm_server.hits
    llm_server.stop()
    with agenttape.use_cassette("leaky", mode="none", config=config) as replay:
        replayed = drive(llm_server, dead)
    assert replay.engine is not None and replay.engine.live_count == 0
    assert llm_server.hits == hits
    assert [type(x) for x in replayed] == [type(x) for x in live]
    assert replayed[12] is PermissionError and replayed[13] == BLOB_SIZE


def test_a_secret_in_a_binary_body_is_overwritten_in_place(
    recording: tuple[Config, Path, list[Any], int]
) -> None:
    """Decision (docs/security.md): a key inside binary data is overwritten with ``*``
    bytes of the same length, so the file keeps its size and offsets."""
    _config_, path, _live, _dead = recording
    [asset] = (path.parent / "leaky.assets").iterdir()
    blob = asset.read_bytes()
    assert len(blob) == BLOB_SIZE
    assert blob[6000:6000 + len(KEY)] == b"*" * len(KEY)
    assert blob[:6000] == b"\x00\xff" * 3000
    with agenttape.use_cassette("leaky", mode="none", config=_config_):
        assert secret_blob(3000) == blob


PLANTS = {
    "text": lambda c: c["interactions"][-1]["response"].update(note=f"key {KEY}"),
    "denylisted key": lambda c: c["interactions"][-1]["response"].update(password="hunter"),
    "url query": lambda c: c["interactions"][-1]["response"].update(
        next="https://api.example.com/x?api_key=abc123"),
    "url password": lambda c: c["interactions"][-1]["response"].update(
        next="https://bob:pa55word@example.com/"),
    "embedded json": lambda c: c["interactions"][-1]["response"].update(
        raw='{"password": "hunter2"}'),
    "binary": lambda c: c["interactions"][-1]["response"].update(
        body_b64=base64.b64encode(b"\xff" * 5000 + KEY.encode()).decode()),
    "split across events": lambda c: c["interactions"][-1].update(
        response={"status_code": 200, "headers": {}, "events": [
            {"data": "my key is sk-test-SECRET"}, {"data": "abcdefghijklmnopqrstuvw"}]},
        metadata={"stream": True}),
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_validate_fails_on_a_planted_secret_without_printing_it(
    plant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with agenttape.use_cassette("clean", record=True):
        chatty_tool("z")
    path = Path("cassettes/clean.yaml")
    assert main(["validate", str(path)]) == 0
    data = agenttape.read_cassette(path).to_dict()
    PLANTS[plant](data)
    # Written without redaction, as a hand edit or an older agenttape would have.
    agenttape.write_cassette(agenttape.Cassette.from_dict(data), path)
    capsys.readouterr()
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "secret (" in out and "interaction 0" in out
    for secret in (KEY, "hunter2", "abc123", "pa55word"):
        assert secret not in out


def test_agenttape_redact_removes_what_validate_finds(capsys: pytest.CaptureFixture[str]) -> None:
    with agenttape.use_cassette("clean", record=True):
        chatty_tool("z")
    path = Path("cassettes/clean.yaml")
    data = agenttape.read_cassette(path).to_dict()
    for plant in PLANTS.values():
        plant(data)
        agenttape.write_cassette(agenttape.Cassette.from_dict(data), path)
        assert main(["redact", str(path)]) == 0
        assert main(["validate", str(path)]) == 0, capsys.readouterr().out


def test_an_invalid_user_regex_warns_clearly_and_the_rest_still_redacts() -> None:
    config = Config(redact=RedactConfig(regexes=["(unclosed", r"custom-[0-9a-f]{12}"]))
    with pytest.warns(UserWarning, match=r"ignoring invalid \[redact\] regex '\(unclosed'"), \
            agenttape.use_cassette("regex", record=True, config=config) as session:
        chatty_tool(f"{CUSTOM} and {KEY}")
    text = Path(session.path).read_text()
    assert CUSTOM not in text and KEY not in text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with agenttape.use_cassette("regex", config=config):
            assert chatty_tool(f"{CUSTOM} and {KEY}")["q"] == "***REDACTED*** and ***REDACTED***"
