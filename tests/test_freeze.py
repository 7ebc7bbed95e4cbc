"""Freeze layer: pinned clock, recorded uuids, seeded global RNG, env drift (DESIGN.md §8)."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from pathlib import Path

import pytest

import agenttape


@agenttape.tool
def stamp(label: str) -> str:
    return label


def run() -> dict[str, object]:
    return {
        "random": [random.random() for _ in range(3)],
        "uuids": [str(agenttape.uuid4()) for _ in range(3)],
        "now": agenttape.now().isoformat(),
        "time": agenttape.time(),
        "rng": agenttape.rng().randint(0, 10**9),
        "clock": agenttape.clock().now().isoformat(),
    }


def test_record_and_replay_see_the_same_values_and_rng_state_is_restored() -> None:
    random.seed(1234)
    state = random.getstate()
    with agenttape.use_cassette("frozen", record=True):
        stamp("a")
        recorded = run()
    assert random.getstate() == state

    time.sleep(0.01)
    with agenttape.use_cassette("frozen"):
        stamp("a")
        replayed = run()
    assert replayed == recorded
    assert random.getstate() == state


def test_meta_freeze_is_stored() -> None:
    with agenttape.use_cassette("meta", record=True):
        ids = [str(agenttape.uuid4()) for _ in range(2)]
        pinned = agenttape.now()
    meta = agenttape.read_cassette(Path("cassettes/meta.yaml")).meta["freeze"]
    assert meta["features"] == ["clock", "uuid", "random"]
    assert meta["uuids"] == ids
    assert dt.datetime.fromisoformat(meta["base_iso"]) == pinned
    assert meta["base_time"] == pytest.approx(pinned.timestamp(), abs=1e-6)
    assert isinstance(meta["random_seed"], int)


def test_clock_is_pinned_inside_and_real_outside() -> None:
    with agenttape.use_cassette("clock", record=True):
        first = agenttape.time()
        time.sleep(0.02)
        assert agenttape.time() == first
    assert agenttape.time() > first
    assert agenttape.now().tzinfo is not None


def test_providers_are_real_when_feature_not_frozen() -> None:
    with agenttape.use_cassette("partial", record=True, freeze=["random"]):
        a = agenttape.uuid4()
        t = agenttape.time()
        time.sleep(0.01)
        assert agenttape.uuid4() != a
        assert agenttape.time() > t
    assert isinstance(a, uuid.UUID) and a.version == 4


def test_rng_outside_a_session_is_a_real_random() -> None:
    assert isinstance(agenttape.rng(), random.Random)
    assert agenttape.uuid4() != agenttape.uuid4()


def test_numpy_global_rng_is_seeded_and_restored() -> None:
    np = pytest.importorskip("numpy")
    np.random.seed(7)
    saved = np.random.get_state()
    with agenttape.use_cassette("np", record=True):
        recorded = np.random.random(3).tolist()
    assert (np.random.get_state()[1] == saved[1]).all()
    with agenttape.use_cassette("np"):
        assert np.random.random(3).tolist() == recorded


def test_env_drift_warns_naming_the_variable_and_both_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Path("agenttape.toml").write_text('env_snapshot = ["MODEL_NAME"]\n')
    monkeypatch.setenv("MODEL_NAME", "gpt-4o")
    with agenttape.use_cassette("drift", record=True):
        stamp("x")
    assert agenttape.read_cassette(Path("cassettes/drift.yaml")).meta["freeze"]["env"] == {
        "MODEL_NAME": "gpt-4o"
    }
    monkeypatch.setenv("MODEL_NAME", "gpt-5")
    with pytest.warns(agenttape.DeterminismDriftWarning, match="MODEL_NAME") as caught, \
            agenttape.use_cassette("drift"):
        stamp("x")
    text = str(caught[0].message)
    assert "'gpt-4o'" in text and "'gpt-5'" in text


def test_no_warning_when_env_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("agenttape.toml").write_text('env_snapshot = ["MODEL_NAME"]\n')
    monkeypatch.setenv("MODEL_NAME", "same")
    with agenttape.use_cassette("stable", record=True):
        stamp("x")
    with agenttape.use_cassette("stable"):  # filterwarnings=error turns a warning into failure
        stamp("x")
