from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agenttape import config as config_module
from agenttape.config import (
    DEFAULT_VOLATILE_FIELDS,
    FORMATS,
    FREEZE_FEATURES,
    MATCHER_NAMES,
    MODES,
    Config,
    RedactConfig,
    check_format,
    check_freeze,
    check_mode,
    env_mode,
)
from agenttape.errors import AgentTapeError, ConfigError


@pytest.fixture(autouse=True)
def _no_env_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's or CI's own AGENTTAPE_MODE must not leak into these tests.
    monkeypatch.delenv("AGENTTAPE_MODE", raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(start: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Config.load(start)
    return info.value


# --- defaults and constants ----------------------------------------------------------------


def test_constants() -> None:
    assert MODES == ("none", "once", "new_episodes", "all", "record")
    assert FORMATS == ("yaml", "json")
    assert FREEZE_FEATURES == ("clock", "uuid", "random")
    assert MATCHER_NAMES == ("ignore_volatile", "exact", "ordered", "sequential")
    assert DEFAULT_VOLATILE_FIELDS == (
        "timestamp",
        "created",
        "created_at",
        "request_id",
        "x-request-id",
        "x-amzn-requestid",
        "nonce",
        "trace_id",
        "traceparent",
        "date",
        "user-agent",
        "idempotency-key",
    )


def test_defaults() -> None:
    config = Config()
    assert config.cassette_dir == Path("cassettes")
    assert config.default_mode == "none"
    assert config.default_matchers == ["ignore_volatile"]
    assert config.format == "yaml"
    assert config.freeze == ["clock", "uuid", "random"]
    assert config.ignore_volatile_fields == list(DEFAULT_VOLATILE_FIELDS)
    assert config.env_snapshot == []
    assert config.assets_threshold_bytes == 4096
    assert config.allow_playback_repeats is False
    assert config.llm_hosts == []
    assert config.model_override is None
    assert config.redact == RedactConfig(
        enabled=True, denylist=[], regexes=[], redact_emails=True, placeholder="***REDACTED***"
    )
    assert config.source is None


def test_default_lists_are_not_shared() -> None:
    first = Config()
    first.freeze.append("clock")
    first.redact.denylist.append("x")
    assert Config().freeze == ["clock", "uuid", "random"]
    assert Config().redact.denylist == []


def test_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Config(Path("x"))  # type: ignore[call-arg]


def test_load_without_file_gives_defaults_relative_to_start(tmp_path: Path) -> None:
    config = Config.load(tmp_path)
    assert config == Config(cassette_dir=tmp_path / "cassettes")
    assert config.source is None


def test_load_defaults_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "agenttape.toml", 'format = "json"\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    config = Config.load()
    assert config.format == "json"
    assert config.source == tmp_path / "agenttape.toml"


# --- discovery -----------------------------------------------------------------------------


def test_agenttape_toml_in_parent_found_from_subfolder(tmp_path: Path) -> None:
    source = write(tmp_path / "agenttape.toml", 'default_mode = "once"\n')
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    config = Config.load(deep)
    assert config.default_mode == "once"
    assert config.source == source


def test_start_may_be_a_file(tmp_path: Path) -> None:
    test_file = write(tmp_path / "tests" / "test_x.py", "")
    assert Config.load(test_file).cassette_dir == tmp_path / "tests" / "cassettes"
    write(tmp_path / "agenttape.toml", 'default_mode = "all"\n')
    assert Config.load(test_file).default_mode == "all"


def test_nearest_file_wins(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", 'default_mode = "all"\n')
    inner = write(tmp_path / "pkg" / "agenttape.toml", 'default_mode = "once"\n')
    config = Config.load(tmp_path / "pkg")
    assert config.default_mode == "once"
    assert config.source == inner


def test_pyproject_tool_agenttape(tmp_path: Path) -> None:
    source = write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "x"\n\n'
        "[tool.agenttape]\n"
        'default_mode = "new_episodes"\n'
        "assets_threshold_bytes = 10\n\n"
        "[tool.agenttape.redact]\n"
        'placeholder = "<gone>"\n',
    )
    config = Config.load(tmp_path)
    assert config.default_mode == "new_episodes"
    assert config.assets_threshold_bytes == 10
    assert config.redact.placeholder == "<gone>"
    assert config.source == source


def test_pyproject_without_table_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", 'format = "json"\n')
    write(tmp_path / "proj" / "pyproject.toml", '[project]\nname = "x"\n')
    # Mentions agenttape, so it is parsed, but has no [tool.agenttape] table.
    write(tmp_path / "proj" / "sub" / "pyproject.toml", '[project]\nname = "agenttape-demo"\n')
    config = Config.load(tmp_path / "proj" / "sub")
    assert config.format == "json"
    assert config.source == tmp_path / "agenttape.toml"


def test_malformed_pyproject_not_mentioning_agenttape_is_skipped(tmp_path: Path) -> None:
    # Another tool's broken pyproject.toml cannot hold our table; it must not block discovery.
    write(tmp_path / "agenttape.toml", 'format = "json"\n')
    write(tmp_path / "proj" / "pyproject.toml", "[project\n")
    assert Config.load(tmp_path / "proj").format == "json"


def test_empty_tool_agenttape_table_counts(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", 'format = "json"\n')
    source = write(tmp_path / "proj" / "pyproject.toml", "[tool.agenttape]\n")
    config = Config.load(tmp_path / "proj")
    assert config.format == "yaml"
    assert config.source == source
    assert config.cassette_dir == tmp_path / "proj" / "cassettes"


def test_agenttape_toml_wins_over_pyproject_in_same_folder(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.agenttape]\nformat = "yaml"\n')
    source = write(tmp_path / "agenttape.toml", 'format = "json"\n')
    config = Config.load(tmp_path)
    assert config.format == "json"
    assert config.source == source


def test_folder_named_like_config_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "sub" / "agenttape.toml").mkdir(parents=True)
    write(tmp_path / "agenttape.toml", 'format = "json"\n')
    assert Config.load(tmp_path / "sub").format == "json"


def test_unchanged_file_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Config.load runs on every session enter; it must not re-parse an unchanged file.
    parsed: list[Path] = []
    real_parse = config_module._parse

    def counting_parse(path: Path, data: bytes) -> dict[str, Any]:
        parsed.append(path)
        return real_parse(path, data)

    monkeypatch.setattr(config_module, "_parse", counting_parse)
    path = write(tmp_path / "agenttape.toml", 'format = "json"\n')
    for _ in range(3):
        assert Config.load(tmp_path).format == "json"
    assert parsed == [path]


def test_changed_file_is_reread(tmp_path: Path) -> None:
    path = write(tmp_path / "agenttape.toml", 'format = "json"\n')
    assert Config.load(tmp_path).format == "json"
    write(path, 'format = "yaml"\ndefault_mode = "all"\n')
    config = Config.load(tmp_path)
    assert (config.format, config.default_mode) == ("yaml", "all")


def test_mutating_a_loaded_config_does_not_leak_into_the_next_load(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", 'llm_hosts = ["llm.internal"]\n[redact]\ndenylist = ["a"]\n')
    first = Config.load(tmp_path)
    first.llm_hosts.append("other")
    first.redact.denylist.append("b")
    second = Config.load(tmp_path)
    assert second.llm_hosts == ["llm.internal"]
    assert second.redact.denylist == ["a"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "agenttape.toml").write_bytes(b'\xef\xbb\xbfformat = "json"\n')
    assert Config.load(tmp_path).format == "json"


# --- values from a file --------------------------------------------------------------------


def test_every_key_is_read(tmp_path: Path) -> None:
    write(
        tmp_path / "agenttape.toml",
        """
cassette_dir = "tapes"
default_mode = "once"
default_matchers = ["exact", "ordered"]
format = "json"
freeze = ["uuid"]
ignore_volatile_fields = ["stamp"]
env_snapshot = ["LANG"]
assets_threshold_bytes = 0
allow_playback_repeats = true
llm_hosts = ["llm.internal:8000"]
model_override = "gpt-4o-mini"

[redact]
enabled = false
denylist = ["x-session"]
regexes = ["tok_[0-9]+"]
redact_emails = false
placeholder = "[hidden]"
""",
    )
    config = Config.load(tmp_path)
    assert config == Config(
        cassette_dir=tmp_path / "tapes",
        default_mode="once",
        default_matchers=["exact", "ordered"],
        format="json",
        freeze=["uuid"],
        ignore_volatile_fields=["stamp"],
        env_snapshot=["LANG"],
        assets_threshold_bytes=0,
        allow_playback_repeats=True,
        llm_hosts=["llm.internal:8000"],
        model_override="gpt-4o-mini",
        redact=RedactConfig(
            enabled=False,
            denylist=["x-session"],
            regexes=["tok_[0-9]+"],
            redact_emails=False,
            placeholder="[hidden]",
        ),
        source=tmp_path / "agenttape.toml",
    )


def test_cassette_dir_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "agenttape.toml", 'cassette_dir = "tests/cassettes"\n')
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    config = Config.load()
    assert config.cassette_dir == tmp_path / "tests" / "cassettes"
    assert config.cassette_dir.is_absolute()


def test_cassette_dir_default_is_beside_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", "")
    (tmp_path / "sub").mkdir()
    assert Config.load(tmp_path / "sub").cassette_dir == tmp_path / "cassettes"


def test_cassette_dir_parent_reference_is_normalised(tmp_path: Path) -> None:
    write(tmp_path / "cfg" / "agenttape.toml", 'cassette_dir = "../shared"\n')
    assert Config.load(tmp_path / "cfg").cassette_dir == tmp_path / "shared"


def test_absolute_cassette_dir_is_kept(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(tmp_path / "proj" / "agenttape.toml", f"cassette_dir = {str(elsewhere)!r}\n")
    assert Config.load(tmp_path / "proj").cassette_dir == elsewhere


def test_ignore_volatile_fields_replaces_the_defaults(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", 'ignore_volatile_fields = ["my_stamp"]\n')
    assert Config.load(tmp_path).ignore_volatile_fields == ["my_stamp"]


def test_invalid_redact_regex_is_not_a_config_error(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", '[redact]\nregexes = ["(unclosed"]\n')
    assert Config.load(tmp_path).redact.regexes == ["(unclosed"]


# --- AGENTTAPE_MODE ------------------------------------------------------------------------


def test_env_mode_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "agenttape.toml", 'default_mode = "all"\n')
    monkeypatch.setenv("AGENTTAPE_MODE", "none")
    assert Config.load(tmp_path).default_mode == "none"


def test_env_mode_overrides_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTAPE_MODE", "new_episodes")
    assert Config.load(tmp_path).default_mode == "new_episodes"
    assert env_mode() == "new_episodes"


def test_empty_env_mode_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "agenttape.toml", 'default_mode = "once"\n')
    monkeypatch.setenv("AGENTTAPE_MODE", "")
    assert Config.load(tmp_path).default_mode == "once"
    assert env_mode() is None


def test_bad_env_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTAPE_MODE", "replay")
    error = load_error(tmp_path)
    assert error.key == "AGENTTAPE_MODE"
    assert error.path is None
    assert str(error) == (
        "`AGENTTAPE_MODE` must be one of none, once, new_episodes, all, record; got 'replay'"
    )


def test_bad_env_mode_gets_a_suggestion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTAPE_MODE", "new_episode")
    assert load_error(tmp_path).suggestion == "new_episodes"


# --- errors from a file --------------------------------------------------------------------


def test_unknown_key_names_file_key_and_closest_key(tmp_path: Path) -> None:
    path = write(tmp_path / "agenttape.toml", 'default_mod = "none"\n')
    error = load_error(tmp_path)
    assert str(error) == f"{path}: unknown key `default_mod` (did you mean `default_mode`?)"
    assert (error.path, error.key, error.suggestion) == (path, "default_mod", "default_mode")


def test_unknown_key_in_pyproject_names_the_table(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool.agenttape]\nfreez = []\n")
    assert str(load_error(tmp_path)) == (
        f"{path}: unknown key `freez` in [tool.agenttape] (did you mean `freeze`?)"
    )


def test_unknown_key_without_close_match_lists_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "agenttape.toml", "zzz = 1\n")
    error = load_error(tmp_path)
    assert error.suggestion is None
    assert str(error) == (
        f"{path}: unknown key `zzz`; valid keys: cassette_dir, default_mode, default_matchers, "
        "format, freeze, ignore_volatile_fields, env_snapshot, assets_threshold_bytes, "
        "allow_playback_repeats, llm_hosts, model_override, redact"
    )


def test_source_is_not_a_file_key(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", 'source = "x"\n')
    assert load_error(tmp_path).key == "source"


def test_tool_table_in_agenttape_toml_is_explained(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", '[tool.agenttape]\nformat = "json"\n')
    error = load_error(tmp_path)
    assert error.key == "tool"
    assert "takes its keys at the top level" in str(error)


def test_unknown_redact_key(tmp_path: Path) -> None:
    path = write(tmp_path / "agenttape.toml", '[redact]\nplaceholdr = "x"\n')
    error = load_error(tmp_path)
    assert str(error) == (
        f"{path}: unknown key `redact.placeholdr` in [redact] (did you mean `redact.placeholder`?)"
    )
    assert error.key == "redact.placeholdr"


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        (
            'assets_threshold_bytes = "big"',
            "assets_threshold_bytes",
            "`assets_threshold_bytes` must be a non-negative integer (bytes); got 'big' (string)",
        ),
        (
            "assets_threshold_bytes = -1",
            "assets_threshold_bytes",
            "`assets_threshold_bytes` must be a non-negative integer (bytes); got -1 (integer)",
        ),
        (
            "assets_threshold_bytes = true",
            "assets_threshold_bytes",
            "`assets_threshold_bytes` must be a non-negative integer (bytes); got True (boolean)",
        ),
        (
            "assets_threshold_bytes = 4096.0",
            "assets_threshold_bytes",
            "`assets_threshold_bytes` must be a non-negative integer (bytes); got 4096.0 (float)",
        ),
        (
            'freeze = "clock"',
            "freeze",
            "`freeze` must be a list of strings from clock, uuid, random; got 'clock' (string) "
            '(did you mean `["clock"]`?)',
        ),
        (
            'freeze = ["clock", "time"]',
            "freeze",
            "`freeze` has unknown entry 'time'; valid entries: clock, uuid, random",
        ),
        (
            "freeze = [1]",
            "freeze",
            "`freeze` must contain only strings; got 1 (integer)",
        ),
        (
            'default_mode = "recrod"',
            "default_mode",
            "`default_mode` must be one of none, once, new_episodes, all, record; got 'recrod' "
            "(did you mean `record`?)",
        ),
        (
            "default_mode = 1",
            "default_mode",
            "`default_mode` must be one of none, once, new_episodes, all, record; got 1 (integer)",
        ),
        (
            'format = "yml"',
            "format",
            "`format` must be one of yaml, json; got 'yml' (did you mean `yaml`?)",
        ),
        (
            'default_matchers = ["fuzzy"]',
            "default_matchers",
            "`default_matchers` has unknown entry 'fuzzy'; "
            "valid entries: ignore_volatile, exact, ordered, sequential",
        ),
        (
            "default_matchers = []",
            "default_matchers",
            "`default_matchers` must name at least one matcher from "
            "ignore_volatile, exact, ordered, sequential",
        ),
        (
            'ignore_volatile_fields = "date"',
            "ignore_volatile_fields",
            "`ignore_volatile_fields` must be a list of strings; got 'date' (string) "
            '(did you mean `["date"]`?)',
        ),
        (
            "env_snapshot = [true]",
            "env_snapshot",
            "`env_snapshot` must contain only strings; got True (boolean)",
        ),
        (
            'allow_playback_repeats = "yes"',
            "allow_playback_repeats",
            "`allow_playback_repeats` must be true or false; got 'yes' (string)",
        ),
        (
            "llm_hosts = {a = 1}",
            "llm_hosts",
            "`llm_hosts` must be a list of strings; got {'a': 1} (table)",
        ),
        (
            'model_override = ""',
            "model_override",
            "`model_override` must be a non-empty string (a model name); got '' (string)",
        ),
        (
            "cassette_dir = 5",
            "cassette_dir",
            "`cassette_dir` must be a non-empty string (a folder path); got 5 (integer)",
        ),
        (
            'redact = "on"',
            "redact",
            "`redact` must be a table; got 'on' (string)",
        ),
        (
            "[redact]\nplaceholder = 0",
            "redact.placeholder",
            "`redact.placeholder` must be a string; got 0 (integer)",
        ),
        (
            '[redact]\nenabled = "no"',
            "redact.enabled",
            "`redact.enabled` must be true or false; got 'no' (string)",
        ),
        (
            '[redact]\ndenylist = "cookie"',
            "redact.denylist",
            "`redact.denylist` must be a list of strings; got 'cookie' (string) "
            '(did you mean `["cookie"]`?)',
        ),
        (
            "[redact]\nregexes = [1]",
            "redact.regexes",
            "`redact.regexes` must contain only strings; got 1 (integer)",
        ),
        (
            "[redact]\nredact_emails = 1",
            "redact.redact_emails",
            "`redact.redact_emails` must be true or false; got 1 (integer)",
        ),
    ],
)
def test_bad_value_names_file_key_expected_and_found(
    tmp_path: Path, line: str, key: str, message: str
) -> None:
    path = write(tmp_path / "agenttape.toml", line + "\n")
    error = load_error(tmp_path)
    assert str(error).removeprefix(f"{path}: ") == message
    assert str(error).startswith(f"{path}: ")
    assert (error.path, error.key) == (path, key)


def test_bad_value_in_pyproject_names_pyproject(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", '[tool.agenttape]\nformat = "xml"\n')
    error = load_error(tmp_path)
    assert error.path == path
    assert str(error) == f"{path}: `format` must be one of yaml, json; got 'xml'"


def test_tool_agenttape_must_be_a_table(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool]\nagenttape = 1\n")
    error = load_error(tmp_path)
    assert (error.path, error.key) == (path, "tool.agenttape")
    assert "must be a table" in str(error)


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "agenttape.toml", 'format = "json"\ndefault_mode = \n')
    error = load_error(tmp_path)
    assert error.path == path
    assert str(error).startswith(f"{path}: invalid TOML: ")
    assert "line 2" in str(error)


def test_malformed_pyproject_mentioning_agenttape_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "pyproject.toml", "[tool.agenttape\n")
    error = load_error(tmp_path)
    assert error.path == path
    assert "line 1" in str(error)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "agenttape.toml"
    path.write_bytes(b'format = "\xff"\n')
    error = load_error(tmp_path)
    assert error.path == path
    assert "not UTF-8" in str(error)


def test_malformed_file_error_is_not_cached(tmp_path: Path) -> None:
    path = write(tmp_path / "agenttape.toml", "format = \n")
    load_error(tmp_path)
    write(path, 'format = "json"\n')
    assert Config.load(tmp_path).format == "json"


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs file permissions to apply"
)
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "agenttape.toml", "")
    path.chmod(0)
    try:
        error = load_error(tmp_path)
    finally:
        path.chmod(0o644)
    assert error.path == path
    assert "cannot read" in str(error)


def test_config_error_is_a_value_error(tmp_path: Path) -> None:
    write(tmp_path / "agenttape.toml", "zzz = 1\n")
    with pytest.raises(ValueError):
        Config.load(tmp_path)
    error = load_error(tmp_path)
    assert isinstance(error, AgentTapeError)


# --- construction, evolve and the argument validators --------------------------------------


def test_constructor_validates() -> None:
    with pytest.raises(ConfigError) as info:
        Config(default_mode="bogus")
    assert info.value.key == "default_mode"
    assert info.value.path is None
    assert str(info.value) == (
        "`default_mode` must be one of none, once, new_episodes, all, record; got 'bogus'"
    )


def test_redact_config_validates() -> None:
    with pytest.raises(ConfigError) as info:
        RedactConfig(placeholder=None)  # type: ignore[arg-type]
    assert info.value.key == "redact.placeholder"


def test_redact_must_be_a_redact_config() -> None:
    with pytest.raises(ConfigError) as info:
        Config(redact={"enabled": False})  # type: ignore[arg-type]
    assert info.value.key == "redact"


def test_assignment_validates() -> None:
    config = Config()
    with pytest.raises(ConfigError):
        config.format = "xml"
    assert config.format == "yaml"


def test_cassette_dir_accepts_str_and_rejects_other_types() -> None:
    assert Config(cassette_dir="tapes").cassette_dir == Path("tapes")
    with pytest.raises(ConfigError) as info:
        Config(cassette_dir=3)  # type: ignore[arg-type]
    assert info.value.key == "cassette_dir"
    with pytest.raises(ConfigError):
        Config(cassette_dir="")


def test_list_fields_require_lists() -> None:
    with pytest.raises(ConfigError) as info:
        Config(freeze=("clock",))  # type: ignore[arg-type]
    assert info.value.key == "freeze"


def test_evolve_applies_and_validates(tmp_path: Path) -> None:
    base = Config.load(tmp_path)
    changed = base.evolve(default_mode="all", freeze=[])
    assert (changed.default_mode, changed.freeze) == ("all", [])
    assert (base.default_mode, base.freeze) == ("none", ["clock", "uuid", "random"])
    assert changed.cassette_dir == base.cassette_dir
    with pytest.raises(ConfigError) as info:
        base.evolve(assets_threshold_bytes=-5)
    assert info.value.key == "assets_threshold_bytes"


def test_evolve_rejects_unknown_field() -> None:
    with pytest.raises(TypeError):
        Config().evolve(nope=1)


def test_check_mode() -> None:
    for mode in MODES:
        assert check_mode(mode) == mode
    with pytest.raises(ConfigError) as info:
        check_mode("bogus")
    assert info.value.key == "mode"
    assert str(info.value) == (
        "`mode` must be one of none, once, new_episodes, all, record; got 'bogus'"
    )
    with pytest.raises(ConfigError) as info:
        check_mode("nonee", source="--agenttape-mode")
    assert str(info.value).startswith("`--agenttape-mode` must be one of")
    assert info.value.suggestion == "none"


def test_check_format() -> None:
    assert check_format("json") == "json"
    with pytest.raises(ConfigError) as info:
        check_format("toml")
    assert str(info.value) == "`format` must be one of yaml, json; got 'toml'"


def test_check_freeze_accepts_any_iterable_but_not_a_string() -> None:
    assert check_freeze(("clock", "uuid")) == ["clock", "uuid"]
    assert check_freeze([]) == []
    assert sorted(check_freeze({"random"})) == ["random"]
    with pytest.raises(ConfigError) as info:
        check_freeze("clock")
    assert info.value.suggestion == '["clock"]'
    with pytest.raises(ConfigError) as info:
        check_freeze(["uuid", "clok"])
    assert str(info.value) == (
        "`freeze` has unknown entry 'clok'; valid entries: clock, uuid, random "
        "(did you mean `clock`?)"
    )
    with pytest.raises(ConfigError):
        check_freeze(5)  # type: ignore[arg-type]
