"""Sessions: load a cassette, become the active session, write what the mode asks for."""

from __future__ import annotations

import contextvars
import datetime as _dt
import functools
import os
import threading
import uuid as _uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from ._model import Cassette, Interaction
    from .config import Config
    from .engine import Engine
    from .freeze import FreezeState
    from .matchers import MatcherLike
    from .redaction import Redactor

__all__ = ["Session", "active_session", "use_cassette"]

_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "agenttape_session", default=None
)
# Sessions open anywhere in the process, most recent last: the fallback for worker threads
# that did not inherit the context (thread pools running tools).
_open_sessions: list[Session] = []
_open_lock = threading.Lock()


def active_session() -> Session | None:
    """The innermost open session, or None outside any session."""
    session = _current.get()
    if session is not None and session._open:
        return session
    if _open_sessions:
        with _open_lock:
            return _open_sessions[-1] if _open_sessions else None
    return None


def _tokens(value: Iterable[str] | str | None, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{what} takes boundary names, kinds or globs; got {item!r}",
                              key=what)
    return items


class Session:
    """One cassette in use. Sync and async context manager; see :func:`use_cassette`."""

    def __init__(
        self,
        name: str | Path,
        *,
        mode: str | None = None,
        live: Iterable[str] | None = None,
        frozen: Iterable[str] | None = None,
        matchers: Sequence[MatcherLike] | None = None,
        freeze: Iterable[str] | None = None,
        record: bool = False,
        config: Config | None = None,
        cassette_dir: str | Path | None = None,
        format: str | None = None,
        tags: Iterable[str] | None = None,
        mode_override: str | None = None,
    ) -> None:
        from ._storage import cassette_path
        from .config import Config, check_format, check_freeze, check_mode
        from .matchers import resolve_matchers

        self.config: Config = config if config is not None else Config.load()
        self.name = str(name)
        if record:
            if mode is not None and mode not in ("record", "all"):
                raise ConfigError(f"record=True conflicts with mode={mode!r}", key="record")
            mode = "record"
        env_mode = os.environ.get("AGENTTAPE_MODE") or None
        # Precedence: an explicit run-wide override (pytest flag), then AGENTTAPE_MODE
        # (CI's guarantee that nothing runs live), then the argument, then the config file.
        chosen = mode_override or env_mode or mode or self.config.default_mode
        source = ("mode_override" if mode_override else "AGENTTAPE_MODE" if env_mode
                  else "mode")
        self.mode: str = check_mode(chosen, source=source)
        self.live = _tokens(live, "live")
        self.frozen = _tokens(frozen, "frozen")
        if self.live and self.frozen:
            raise ConfigError("`live` and `frozen` are mutually exclusive; set only one",
                              key="live")
        fmt = check_format(format) if format is not None else self.config.format
        self.freeze_features = tuple(
            check_freeze(freeze) if freeze is not None else self.config.freeze
        )
        self.tags = list(tags or [])
        self.matchers = resolve_matchers(
            list(matchers) if matchers is not None else self.config.default_matchers,
            self.config.ignore_volatile_fields,
        )
        base = Path(cassette_dir) if cassette_dir is not None else self.config.cassette_dir
        # Resolved once, now: a later chdir must not move where this session writes.
        base = base if base.is_absolute() else Path.cwd() / base
        self.path: Path = cassette_path(name, base, fmt)
        if not Path(name).is_absolute():
            _check_inside(self.path, base, name)
        self.engine: Engine | None = None
        self.freeze_state: FreezeState | None = None
        self.cassette: Cassette | None = None
        self.written: list[Path] = []
        self.redactor: Redactor | None = None
        self._open = False
        self._token: contextvars.Token[Session | None] | None = None
        self._restores: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        """True between enter and exit: objects bound to this session record only then."""
        return self._open

    # -- context management ----------------------------------------------------------------
    def __enter__(self) -> Session:
        self._start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop(failed=exc_type is not None)
        self._surface_unmatched(exc)

    async def __aenter__(self) -> Session:
        self._start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop(failed=exc_type is not None)
        self._surface_unmatched(exc)

    def __repr__(self) -> str:
        return f"<agenttape.Session {str(self.path)!r} mode={self.mode!r}>"

    # -- lifecycle -----------------------------------------------------------------------
    def _start(self) -> None:
        from ._model import Cassette
        from ._storage import read_for_replay
        from .engine import Engine
        from .freeze import FreezeState
        from .redaction import Redactor

        if self._open:
            raise RuntimeError(f"{self!r} is already active; a session is entered once")
        self.file_existed = self.path.exists()
        needs_file = self.mode not in ("all", "record") or bool(self.frozen)
        loaded = read_for_replay(self.path) if self.file_existed and needs_file else None
        self.cassette = loaded if loaded is not None else Cassette()
        replaying = loaded is not None and self.mode not in ("all", "record")
        recorded_freeze = self.cassette.meta.get("freeze") if replaying else None
        try:
            self.freeze_state = FreezeState(
                self.freeze_features,
                recorded=recorded_freeze if isinstance(recorded_freeze, dict) else None,
                name=self.name,
                env_snapshot=self.config.env_snapshot,
            )
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            from .errors import CassetteCorruptError

            raise CassetteCorruptError(self.path, f"meta.freeze is invalid: {exc}",
                                       field="meta.freeze") from None
        self.redactor = redactor = Redactor.from_config(self.config.redact)
        self.engine = Engine(
            self.cassette.interactions,
            mode=self.mode,
            matchers=self.matchers,
            live=self.live,
            frozen=self.frozen,
            allow_playback_repeats=self.config.allow_playback_repeats,
            cassette=self.path,
            redact=redactor.redact,
            volatile_fields=self.config.ignore_volatile_fields,
            file_existed=self.file_existed,
            unchanged_by_redaction=redactor.unchanged_json,
            redact_stream=functools.partial(redactor.redact, joined=True),
        )
        self._open = True
        self._token = _current.set(self)
        with _open_lock:
            _open_sessions.append(self)
        try:
            self.freeze_state.enter()
            from .transports.hooks import install_hooks

            self._restores = install_hooks(self)
        except BaseException:
            self._stop(failed=True, write=False)
            raise

    def _stop(self, *, failed: bool, write: bool = True) -> None:
        from .transports.hooks import run_restores

        if not self._open:
            return
        assert self.engine is not None and self.freeze_state is not None
        try:
            self.engine.close_pending()
            run_restores(self._restores)
        finally:
            self._restores = []
            self.freeze_state.exit()
            self._open = False
            with _open_lock:
                if self in _open_sessions:
                    _open_sessions.remove(self)
            if self._token is not None:
                try:
                    _current.reset(self._token)
                except ValueError:
                    # Exited in another context than entered (e.g. a different task):
                    # nothing to restore there.
                    _current.set(None)
                self._token = None
            if write:
                self._write(failed)

    def _surface_unmatched(self, exc: BaseException | None) -> None:
        """Re-raise an unmatched error that an SDK turned into its own exception.

        anthropic (and openai 2.x) catch every exception from the transport, retry, and raise
        "Connection error" with ours only as the cause. When the session ends with such an
        exception, the user is better served by the diagnostic that explains it.
        """
        from .errors import UnmatchedInteractionError

        if not isinstance(exc, Exception) or isinstance(exc, UnmatchedInteractionError):
            return
        if self.engine is None:
            return
        if self.engine.unmatched:
            raise self.engine.unmatched[0] from exc

    def _write(self, failed: bool) -> None:
        from ._model import Cassette
        from ._storage import derived_path, write_cassette

        engine, state, original = self.engine, self.freeze_state, self.cassette
        assert engine is not None and state is not None and original is not None
        threshold = self.config.assets_threshold_bytes
        if engine.writes_recordings:
            if self.mode == "new_episodes":
                new = engine.new_interactions()
                if not new:
                    return
                start = len(original.interactions)
                interactions = list(original.interactions) + [
                    _reindex(item, start + n) for n, item in enumerate(new)
                ]
                meta = dict(original.meta) or self._meta(failed)
                if failed:
                    meta["incomplete"] = True
                cassette = Cassette(
                    version="1",
                    created_at=original.created_at or _now_iso(),
                    run_id=original.run_id or _uuid.uuid4().hex,
                    meta=meta,
                    interactions=interactions,
                )
            else:
                cassette = self._fresh(engine.timeline(copies=False), failed)
            self.written.append(write_cassette(cassette, self.path,
                                               assets_threshold_bytes=threshold))
        elif engine.new_positions:
            # Partial replay in a read-only mode: the original is never touched.
            target = derived_path(self.path)
            self.written.append(write_cassette(self._fresh(engine.timeline(copies=False),
                                                           failed), target,
                                               assets_threshold_bytes=threshold))

    def _fresh(self, interactions: list[Interaction], failed: bool) -> Cassette:
        from ._model import Cassette

        return Cassette(
            version="1",
            created_at=_now_iso(),
            run_id=_uuid.uuid4().hex,
            meta=self._meta(failed),
            interactions=interactions,
        )

    def _meta(self, failed: bool) -> dict[str, Any]:
        from ._version import __version__

        assert self.freeze_state is not None
        meta: dict[str, Any] = {
            "agenttape_version": __version__,
            "mode": self.mode,
            "freeze": self.freeze_state.to_meta(),
            "tags": list(self.tags),
        }
        if failed:
            meta["incomplete"] = True
        return meta


def _check_inside(path: Path, base: Path, name: str | Path) -> None:
    """A relative name stays inside the cassette folder, also through symlinks.

    cassette_path() already refuses ``..``; a symlinked subfolder (which a checkout of
    someone's pull request can bring) could still lead a write anywhere. The folder itself
    may be a symlink: both sides are resolved.
    """
    try:
        root = base.resolve()
        where = path.parent.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the write will fail on its own
        return
    if where != root and root not in where.parents:
        raise ConfigError(
            f"cassette {str(name)!r} would be stored in {where}, outside the cassette folder "
            f"{root}: a symlink in {base} leads elsewhere. Remove it, or pass an absolute "
            "path to store the cassette there on purpose",
            key="cassette",
        )


def _reindex(item: Interaction, index: int) -> Interaction:
    import attrs

    return attrs.evolve(item, index=index)


def _now_iso() -> str:
    return _dt.datetime.now(tz=_dt.timezone.utc).replace(microsecond=0).isoformat()


def use_cassette(
    name: str | Path,
    *,
    mode: str | None = None,
    live: Iterable[str] | None = None,
    frozen: Iterable[str] | None = None,
    matchers: Sequence[MatcherLike] | None = None,
    freeze: Iterable[str] | None = None,
    record: bool = False,
    config: Config | None = None,
    cassette_dir: str | Path | None = None,
    format: str | None = None,
    tags: Iterable[str] | None = None,
) -> Session:
    """Open a cassette as a :class:`Session` (a sync or async context manager)."""
    return Session(
        name, mode=mode, live=live, frozen=frozen, matchers=matchers, freeze=freeze,
        record=record, config=config, cassette_dir=cassette_dir, format=format, tags=tags,
    )
