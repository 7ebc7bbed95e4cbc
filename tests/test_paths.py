"""Cassette names from code, markers and parametrize ids never write outside the folder.

A relative name lives under ``cassette_dir``: ``..`` is refused, characters Windows forbids
become ``_``, reserved device names get a ``_`` prefix, a symlinked subfolder leading
elsewhere is refused. An absolute path is used as given, on purpose. (Unit cases of the
name mapping: tests/test_storage.py.)
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import agenttape
from agenttape.errors import ConfigError


@agenttape.tool
def lookup(topic: str) -> str:
    return f"about {topic}"


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _symlink(link: Path, target: Path) -> None:
    try:
        link.symlink_to(target, target_is_directory=True)
    except OSError as exc:  # Windows without the privilege to create symlinks
        pytest.skip(f"cannot create symlinks here: {exc}")


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``sandbox/project`` is the cwd; anything written beside it shows up in ``sandbox``."""
    project = tmp_path / "sandbox" / "project"
    project.mkdir(parents=True)
    monkeypatch.chdir(project)
    return tmp_path / "sandbox"


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "sub/../../../etc/x", "..",
                                  "./../escape"])
def test_dot_dot_names_are_refused_before_anything_is_read_or_written(sandbox: Path,
                                                                      name: str) -> None:
    for mode in ("record", "none"):
        with pytest.raises(ConfigError, match="would leave the cassette folder"):
            agenttape.use_cassette(name, mode=mode)
    assert _files_under(sandbox) == set()


@pytest.mark.parametrize(("name", "stored"), [
    ('weird<>:"|?*name', "weird_______name.yaml"),
    ("tab\tand\x01control", "tab_and_control.yaml"),
    ("trailing dot.", "trailing dot_.yaml"),
    ("CON", "_CON.yaml"),
    ("sub/aux.data", "sub/_aux.data.yaml"),
    ("déjà vu 🎉", "déjà vu 🎉.yaml"),
    ("nested/deeper/name", "nested/deeper/name.yaml"),
])
def test_names_windows_cannot_store_are_mapped_predictably(sandbox: Path, name: str,
                                                           stored: str) -> None:
    with agenttape.use_cassette(name, record=True) as session:
        lookup("x")
    assert session.path == sandbox / "project" / "cassettes" / stored
    assert _files_under(sandbox) == {f"project/cassettes/{stored}"}
    with agenttape.use_cassette(name, mode="none"):
        assert lookup("x") == "about x"


def test_an_absolute_path_is_used_on_purpose(sandbox: Path) -> None:
    target = sandbox / "elsewhere" / "chosen"
    with agenttape.use_cassette(target, record=True) as session:
        lookup("x")
    assert session.path == target.with_name("chosen.yaml")
    assert _files_under(sandbox) == {"elsewhere/chosen.yaml"}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlinked_subfolder_leading_outside_is_refused(sandbox: Path) -> None:
    """A checkout can bring symlinks: ``cassettes/shared -> ../../outside``."""
    outside = sandbox / "outside"
    outside.mkdir()
    cassettes = sandbox / "project" / "cassettes"
    cassettes.mkdir()
    _symlink(cassettes / "shared", outside)
    with pytest.raises(ConfigError, match="outside the cassette folder"):
        agenttape.use_cassette("shared/x", record=True)
    assert _files_under(outside) == set()
    # The cassette folder itself may be a link: that is where the user keeps cassettes.
    real = sandbox / "real-cassettes"
    real.mkdir()
    link = sandbox / "link"
    _symlink(link, real)
    with agenttape.use_cassette("x", record=True, cassette_dir=link):
        lookup("y")
    assert _files_under(real) == {"x.yaml"}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlinked_assets_folder_is_never_written_through(sandbox: Path) -> None:
    outside = sandbox / "outside"
    outside.mkdir()
    victim = outside / ("0" * 64 + ".bin")
    victim.write_bytes(b"not yours to prune")
    cassettes = sandbox / "project" / "cassettes"
    cassettes.mkdir()
    _symlink(cassettes / "blob.assets", outside)

    @agenttape.tool
    def blob() -> bytes:
        return bytes(range(256)) * 40  # over the 4096-byte assets threshold

    with pytest.raises(ValueError, match="is a symlink"):  # noqa: SIM117
        with agenttape.use_cassette("blob", record=True):
            blob()
    assert _files_under(outside) == {victim.name}
    assert not (cassettes / "blob.yaml").exists()


PYTEST_NAMES = """
    import pytest
    import agenttape

    @agenttape.tool
    def lookup(topic):
        return "about " + topic

    @pytest.mark.agenttape
    @pytest.mark.parametrize("topic", ["../../escape", "/etc/passwd", "a:b*c?d", "..", "CON",
                                       "x" * 300])
    def test_ids(topic):
        assert lookup(topic) == "about " + topic

    @pytest.mark.agenttape
    class TestInClass:
        def test_method(self):
            lookup("m")

    @pytest.mark.agenttape("../outside")
    def test_explicit_escape():
        lookup("never")

    @pytest.mark.agenttape("sub/./named")
    def test_explicit_nested():
        lookup("n")
"""


def test_pytest_marker_names_stay_inside_the_cassette_folder(pytester: pytest.Pytester) -> None:
    # Imported before pytester's snapshot, or the inline run would re-import (and drop)
    # a second copy of agenttape's session machinery.
    import agenttape.boundaries
    import agenttape.session  # noqa: F401
    project = pytester.path / "project"
    pytester.makepyfile(**{"project/test_names": textwrap.dedent(PYTEST_NAMES)})
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest("project", "--agenttape-record")
    result.assert_outcomes(passed=8, errors=1)
    result.stdout.fnmatch_lines(["ERROR project/test_names.py::test_explicit_escape - *"])
    assert "contains '..' and would leave the cassette folder" in result.stdout.str()
    outside = {str(p.relative_to(pytester.path)) for p in pytester.path.rglob("*.yaml")
               if not p.is_relative_to(project / "cassettes")}
    assert outside == set()
    written = sorted(str(p.relative_to(project / "cassettes"))
                     for p in (project / "cassettes").rglob("*.yaml"))
    assert len(written) == 8
    assert all(name.startswith("test_names/") and name.count("/") == 1 for name in written
               if "sub/" not in name)
    assert "sub/named.yaml" in written
    assert all(len(Path(name).name) <= 130 for name in written)

    replayed = pytester.runpytest("project")
    replayed.assert_outcomes(passed=8, errors=1)
