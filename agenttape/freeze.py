"""Determinism without patching: injectable clock/uuid/rng providers and a seeded global RNG.

``time.time`` and ``uuid.uuid4`` cannot be pinned without assigning into modules we do not
own, so code asks agenttape instead (``agenttape.now()``, ``agenttape.uuid4()``, …). Outside a
frozen session these return real values. The global ``random`` module is seeded and restored
through its public API only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import random as _random
import sys
import threading
import time as _time
import uuid as _uuid
import warnings
from collections.abc import Iterable
from typing import Any

from .errors import DeterminismDriftWarning

__all__ = ["Clock", "FreezeState", "clock", "now", "rng", "time", "uuid4"]

FEATURES = ("clock", "uuid", "random")


class FreezeState:
    """What one session pins. Built on session enter, undone on exit."""

    def __init__(
        self,
        features: Iterable[str],
        *,
        recorded: dict[str, Any] | None,
        name: str,
        env_snapshot: Iterable[str] = (),
    ) -> None:
        self.features = tuple(f for f in FEATURES if f in set(features))
        recorded = recorded or {}
        self._replaying = bool(recorded)
        # Recorded values come from a cassette, which may be hand-edited or hostile: a bad
        # one fails here (TypeError/ValueError/OverflowError, which the session reports as
        # a corrupt cassette), never later inside the code under test.
        base_time = recorded.get("base_time", _time.time())
        if isinstance(base_time, bool) or not isinstance(base_time, (int, float)):
            raise TypeError(f"base_time must be a number, not {type(base_time).__name__}")
        self.base_time: float = float(base_time)
        self.now()  # outside the datetime range: OverflowError/ValueError/OSError now
        seed = recorded.get("random_seed")
        if not isinstance(seed, int):
            # Stable per cassette name so a re-record produces the same random stream.
            seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
        self.random_seed: int = seed
        stored = recorded.get("uuids") or []
        if not isinstance(stored, list):
            raise TypeError(f"uuids must be a list, not {type(stored).__name__}")
        self._recorded_uuids = [str(u) for u in stored if isinstance(u, str)]
        for recorded_uuid in self._recorded_uuids:
            _uuid.UUID(recorded_uuid)  # ValueError now rather than at the n-th uuid4()
        self.uuids: list[str] = []
        self._uuid_rng = _random.Random(seed ^ 0x5EED)
        self._rng = _random.Random(seed)
        self._lock = threading.Lock()
        self.env_names = tuple(env_snapshot)
        self.env: dict[str, str | None] = {n: os.environ.get(n) for n in self.env_names}
        self._recorded_env = recorded.get("env") if isinstance(recorded.get("env"), dict) else None
        self._saved_random: Any = None
        self._saved_numpy: Any = None

    # -- lifecycle ---------------------------------------------------------------------
    def enter(self) -> None:
        if "random" in self.features:
            self._saved_random = _random.getstate()
            _random.seed(self.random_seed)
            np = sys.modules.get("numpy")
            if np is not None:
                self._saved_numpy = np.random.get_state()
                np.random.seed(self.random_seed)
        self._check_env()

    def exit(self) -> None:
        if self._saved_random is not None:
            _random.setstate(self._saved_random)
            self._saved_random = None
        if self._saved_numpy is not None:
            np = sys.modules.get("numpy")
            if np is not None:
                np.random.set_state(self._saved_numpy)
            self._saved_numpy = None

    def _check_env(self) -> None:
        if self._recorded_env is None:
            return
        for name, then in self._recorded_env.items():
            current = os.environ.get(str(name))
            if then != current:
                warnings.warn(
                    f"environment variable {name} changed since recording: "
                    f"recorded {then!r}, now {current!r}",
                    DeterminismDriftWarning,
                    stacklevel=4,
                )

    # -- providers -----------------------------------------------------------------------
    def now(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.base_time, tz=_dt.timezone.utc)

    def next_uuid(self) -> _uuid.UUID:
        with self._lock:
            position = len(self.uuids)
            if position < len(self._recorded_uuids):
                value = _uuid.UUID(self._recorded_uuids[position])
            else:
                value = _uuid.UUID(int=self._uuid_rng.getrandbits(128), version=4)
            self.uuids.append(str(value))
        return value

    def rng(self) -> _random.Random:
        return self._rng

    def to_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "features": list(self.features),
            "base_time": self.base_time,
            "base_iso": self.now().isoformat(),
            "random_seed": self.random_seed,
            "uuids": list(self.uuids) if self._replaying is False else self._merged_uuids(),
        }
        if self.env_names:
            meta["env"] = dict(self.env)
        return meta

    def _merged_uuids(self) -> list[str]:
        # Replay consumed a prefix of the recorded list; keep the whole of it.
        return self._recorded_uuids + self.uuids[len(self._recorded_uuids):]


def _frozen(feature: str) -> FreezeState | None:
    from .session import active_session

    session = active_session()
    if session is None:
        return None
    state = session.freeze_state
    if state is None or feature not in state.features:
        return None
    return state


_real_rng = _random.Random()


def now() -> _dt.datetime:
    """The current time as an aware UTC datetime, pinned inside a session freezing ``clock``."""
    state = _frozen("clock")
    if state is None:
        return _dt.datetime.now(tz=_dt.timezone.utc)
    return state.now()


def time() -> float:
    """Seconds since the epoch, pinned inside a session freezing ``clock``."""
    state = _frozen("clock")
    return _time.time() if state is None else state.base_time


def uuid4() -> _uuid.UUID:
    """A UUID4; inside a session freezing ``uuid`` the sequence is recorded and replayed."""
    state = _frozen("uuid")
    return _uuid.uuid4() if state is None else state.next_uuid()


def rng() -> _random.Random:
    """A ``random.Random``; inside a session freezing ``random`` it is seeded per cassette."""
    state = _frozen("random")
    return _real_rng if state is None else state.rng()


class Clock:
    """An injectable clock: hand it to code that takes a clock dependency."""

    def now(self) -> _dt.datetime:
        return now()

    def time(self) -> float:
        return time()

    def __repr__(self) -> str:
        return "agenttape.clock()"


_clock = Clock()


def clock() -> Clock:
    return _clock
