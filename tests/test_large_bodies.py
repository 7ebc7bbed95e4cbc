"""Large binary bodies: held once as bytes (a ``Blob``) in memory, written straight to their
asset, read back from it as bytes for replay, and still redacted and compared as the
base64 text a cassette holds.

The memory figures themselves are measured in tests/test_resource_bounds.py; here every
path a large body takes is checked for what it produces.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import requests
from conftest import SECRET_API_KEY
from llm_server import LLMServer

import agenttape
from agenttape import _b64
from agenttape._storage import read_for_replay
from agenttape.cli import main
from agenttape.config import Config, RedactConfig

SIZE = 200_000  # over the 64 KiB from which a recorded binary body is held as a Blob


def _body(server: LLMServer, size: int = SIZE, plant: str = "") -> tuple[str, bytes]:
    url = f"{server.url}/binary?size={size}" + (f"&plant={quote(plant)}" if plant else "")
    return url, httpx.get(url).content  # straight from the server, not recorded


def test_a_large_binary_body_is_recorded_as_bytes_and_written_to_its_asset(
    llm_server: LLMServer,
) -> None:
    url, expected = _body(llm_server)
    with agenttape.use_cassette("blob", mode="record") as session, httpx.Client(
            transport=agenttape.transport()) as client:
        assert client.get(url).content == expected
    assert session.engine is not None
    [recorded] = session.engine.timeline()
    value = recorded.response["body_b64"]
    assert isinstance(value, _b64.Blob) and bytes(value.data) == expected
    text = base64.b64encode(expected).decode()
    assert value == text and str(value) == text and value != text[:-4] + "AAAA"
    assert f"{len(expected)} bytes" in repr(value)

    folder = Path(session.path).parent
    [asset] = (folder / "blob.assets").iterdir()
    assert asset.read_bytes() == expected
    assert asset.stem == hashlib.sha256(expected).hexdigest()
    assert f"body_asset: sha256:{asset.stem}".encode() in Path(session.path).read_bytes()

    # The public reader gives the text a cassette holds; a session gets the bytes.
    public = agenttape.read_cassette(session.path).interactions[0].response["body_b64"]
    assert isinstance(public, str) and public == text
    for_replay = read_for_replay(session.path).interactions[0].response["body_b64"]
    assert isinstance(for_replay, _b64.Blob) and for_replay == public

    hits = llm_server.hits
    llm_server.stop()
    with agenttape.use_cassette("blob", mode="none"), httpx.Client(
            transport=agenttape.transport()) as client:
        assert client.get(url).content == expected
    with agenttape.use_cassette("blob", mode="none"), httpx.Client(
            transport=agenttape.transport()) as client, client.stream("GET", url) as response:
        pieces = list(response.iter_bytes())
    assert b"".join(pieces) == expected and llm_server.hits == hits


def test_a_large_body_recorded_through_requests_is_a_blob_too(llm_server: LLMServer) -> None:
    url, expected = _body(llm_server, 300_000)
    with agenttape.use_cassette("blob", mode="record") as session, requests.Session() as http:
        http.mount("http://", agenttape.requests_adapter())
        assert http.get(url).content == expected
    assert session.engine is not None
    assert isinstance(session.engine.timeline()[0].response["body_b64"], _b64.Blob)
    llm_server.stop()
    with agenttape.use_cassette("blob", mode="none"), requests.Session() as http:
        http.mount("http://", agenttape.requests_adapter())
        assert http.get(url).content == expected


def test_a_key_inside_a_large_binary_body_is_masked_in_the_asset(
    llm_server: LLMServer, tmp_path: Path
) -> None:
    url, expected = _body(llm_server, plant=SECRET_API_KEY)
    assert SECRET_API_KEY.encode() in expected
    with agenttape.use_cassette("leak", mode="record") as session, httpx.Client(
            transport=agenttape.transport()) as client:
        assert client.get(url).content == expected  # the caller gets the real bytes
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert SECRET_API_KEY.encode() not in written
    [asset] = (Path(session.path).parent / "leak.assets").iterdir()
    masked = asset.read_bytes()
    at = expected.index(SECRET_API_KEY.encode())
    # Same length and offsets; only the key's bytes are overwritten.
    assert len(masked) == len(expected)
    assert masked[at:at + len(SECRET_API_KEY)] == b"*" * len(SECRET_API_KEY)
    assert masked[:at] == expected[:at]
    assert main(["validate", str(session.path)]) == 0


def test_validate_finds_a_key_in_a_large_body_recorded_without_redaction(
    llm_server: LLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _expected = _body(llm_server, plant=SECRET_API_KEY)
    config = Config(redact=RedactConfig(enabled=False))
    with agenttape.use_cassette("raw", mode="record", config=config) as session, \
            httpx.Client(transport=agenttape.transport()) as client:
        client.get(url)
    [asset] = (Path(session.path).parent / "raw.assets").iterdir()
    assert SECRET_API_KEY.encode() in asset.read_bytes()
    assert main(["validate", str(session.path)]) != 0
    assert "body_b64" in capsys.readouterr().out


def test_appending_to_a_cassette_keeps_a_loaded_large_body_byte_for_byte(
    llm_server: LLMServer,
) -> None:
    url, expected = _body(llm_server)
    with agenttape.use_cassette("grow", mode="record"), httpx.Client(
            transport=agenttape.transport()) as client:
        client.get(url)
    with agenttape.use_cassette("grow", mode="new_episodes") as session, httpx.Client(
            transport=agenttape.transport()) as client:
        assert client.get(url).content == expected  # replayed from the loaded Blob
        client.get(f"{llm_server.url}/json?new=1")  # recorded and appended
    cassette = agenttape.read_cassette(session.path)
    assert [i.request["url"].split("?")[0].rsplit("/", 1)[-1]
            for i in cassette.interactions] == ["binary", "json"]
    assert base64.b64decode(cassette.interactions[0].response["body_b64"]) == expected
    [asset] = (Path(session.path).parent / "grow.assets").iterdir()
    assert asset.read_bytes() == expected


def test_a_large_body_under_a_raised_threshold_is_written_inline_as_base64(
    llm_server: LLMServer,
) -> None:
    url, expected = _body(llm_server)
    config = Config(assets_threshold_bytes=10 * SIZE)
    with agenttape.use_cassette("inline", mode="record", config=config) as session, \
            httpx.Client(transport=agenttape.transport()) as client:
        client.get(url)
    assert not (Path(session.path).parent / "inline.assets").exists()
    stored = agenttape.read_cassette(session.path).interactions[0].response["body_b64"]
    assert base64.b64decode(stored) == expected


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, _b64._RAW_SLICE - 1, _b64._RAW_SLICE,
                                  _b64._RAW_SLICE + 1, 2 * _b64._RAW_SLICE + 2])
def test_slice_by_slice_base64_equals_the_whole_text_call(size: int) -> None:
    payload = hashlib.sha256(b"%d" % size).digest() * (size // 32 + 1)
    payload = payload[:size]
    text = base64.b64encode(payload).decode()
    assert _b64.encode(payload) == text
    assert _b64.encode(bytearray(payload)) == text
    chunks = [payload[i:i + 7777] for i in range(0, size, 7777)]
    assert _b64.join_consuming(chunks) == payload and chunks == []
    assert _b64.Blob(payload) == text and _b64.Blob(payload) == _b64.Blob(bytearray(payload))
    if size:
        assert _b64.Blob(payload) != base64.b64encode(payload[:-1]).decode()


def test_masking_a_blob_changes_its_digest() -> None:
    blob = _b64.Blob(b"abcdef")
    before = blob.sha256()
    blob.mask(1, 3)
    assert blob.data == bytearray(b"a**def")
    assert blob.sha256() == hashlib.sha256(b"a**def").hexdigest() != before


def test_binary_chunks_of_a_stream_closed_early_replay_from_their_assets(
    llm_server: LLMServer,
) -> None:
    """A body read in part is stored as its chunks (each an asset here); a session loads
    them as bytes and the replay hands back exactly the bytes that were read."""
    url, expected = _body(llm_server, 300_000)
    with pytest.warns(agenttape.StreamingNotRecordedWarning), agenttape.use_cassette(
            "early", mode="record") as session, requests.Session() as http:
        http.mount("http://", agenttape.requests_adapter())
        response = http.get(url, stream=True)
        pieces = response.iter_content(100_000)
        read = next(pieces) + next(pieces)
        response.close()
    assert len(list((Path(session.path).parent / "early.assets").iterdir())) >= 2
    llm_server.stop()
    with agenttape.use_cassette("early", mode="none"), requests.Session() as http:
        http.mount("http://", agenttape.requests_adapter())
        replayed = b"".join(http.get(url, stream=True).iter_content(100_000))
    assert replayed[:len(read)] == read == expected[:len(read)]
    assert expected.startswith(replayed)


@agenttape.tool
def attachment(name: str) -> dict[str, object]:
    return {"name": name, "data": bytes(range(256)) * 100}  # over the assets threshold


def test_a_tool_result_from_an_asset_replays_as_it_was_stored() -> None:
    """Only transports replay a body from its bytes; a tool's result is handed back as
    stored, so nested bytes come back as the same base64 text, never as a Blob."""
    with agenttape.use_cassette("tool", mode="record") as session:
        live = attachment("a.bin")
    assert (Path(session.path).parent / "tool.assets").is_dir()
    with agenttape.use_cassette("tool", mode="none"):
        replayed = attachment("a.bin")
    text = base64.b64encode(live["data"]).decode()  # type: ignore[arg-type]
    assert replayed == {"name": "a.bin", "data": {"body_b64": text}}
    assert type(replayed["data"]["body_b64"]) is str  # type: ignore[index]
