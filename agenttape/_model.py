"""The data model (attrs) and the one cattrs converter that (un)structures it.

Every other module that turns cassettes into plain data or back goes through
:data:`converter`, so the on-disk shape is decided here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import CassetteCorruptError, SchemaVersionError

__all__ = [
    "KINDS",
    "SUPPORTED_VERSIONS",
    "TOOL_KINDS",
    "Cassette",
    "Interaction",
    "converter",
]

KINDS = ("llm", "tool", "retrieval", "memory_read", "memory_write", "http")
TOOL_KINDS = ("tool", "retrieval", "memory_read", "memory_write")
SUPPORTED_VERSIONS = ("1",)

# Order of keys on disk: what a reviewer reads first comes first.
_INTERACTION_ORDER = (
    "index",
    "kind",
    "boundary",
    "request",
    "response",
    "error",
    "usage",
    "latency_ms",
    "match_key",
    "tags",
    "metadata",
)
_CASSETTE_ORDER = ("version", "created_at", "run_id", "meta", "interactions")


def _is_kind(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in KINDS:
        raise ValueError(
            f"{attribute.name} must be one of {', '.join(KINDS)}; got {value!r}"
        )


def _non_negative_int(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"{attribute.name} must be a non-negative integer; got {value!r}")


def _optional_number(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise TypeError(f"{attribute.name} must be a number; got {value!r}")


def _str_list(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{attribute.name} must be a list of strings; got {value!r}")


_str = attrs.validators.instance_of(str)
_dict = attrs.validators.instance_of(dict)
_opt_dict = attrs.validators.optional(_dict)
_opt_str = attrs.validators.optional(_str)


@attrs.define(eq=True)
class Interaction:
    """One captured boundary crossing."""

    index: int = attrs.field(validator=_non_negative_int)
    kind: str = attrs.field(validator=_is_kind)
    request: dict[str, Any] = attrs.field(validator=_dict)
    response: Any = None
    error: dict[str, Any] | None = attrs.field(default=None, validator=_opt_dict)
    match_key: str = attrs.field(default="", validator=_str)
    latency_ms: float | None = attrs.field(default=None, validator=_optional_number)
    usage: dict[str, Any] | None = attrs.field(default=None, validator=_opt_dict)
    tags: list[str] = attrs.field(factory=list, validator=_str_list)
    boundary: str | None = attrs.field(default=None, validator=_opt_str)
    metadata: dict[str, Any] = attrs.field(factory=dict, validator=_dict)

    def __attrs_post_init__(self) -> None:
        # On disk an interaction has a response or an error; both would not round-trip.
        if self.error is not None and self.response is not None:
            raise ValueError("error: an interaction has either a response or an error, not both")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interaction:
        return _structure_interaction(data, None, None)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = converter.unstructure(self)
        return result


@attrs.define(eq=True)
class Cassette:
    """The in-memory form of a cassette file."""

    version: str = attrs.field(default="1", validator=_str)
    created_at: str = attrs.field(default="", validator=_str)
    run_id: str = attrs.field(default="", validator=_str)
    meta: dict[str, Any] = attrs.field(factory=dict, validator=_dict)
    interactions: list[Interaction] = attrs.field(factory=list)

    @classmethod
    def from_dict(cls, data: Any, *, path: str | Path | None = None) -> Cassette:
        """Build a cassette from its plain structure, naming ``path`` in any error."""
        return _structure_cassette(data, path)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = converter.unstructure(self)
        return result


def _passthrough(value: Any, _type: Any) -> Any:
    # Values come from a safe YAML/JSON load; the attrs validators check their types,
    # so the converter must not coerce (cattrs' default would turn 5 into "5").
    return value


def _ordered(order: tuple[str, ...], raw: dict[str, Any]) -> dict[str, Any]:
    return {key: raw[key] for key in order if key in raw}


def _identity(value: Any) -> Any:
    return value


def _make_converter(*, shallow: bool = False) -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=False)
    # Shallow: each field's value as it is, containers shared with the interaction.
    hook = _identity if shallow else None
    inter_unstructure = make_dict_unstructure_fn(
        Interaction,
        conv,
        _cattrs_omit_if_default=True,
        index=override(omit_if_default=False),
        kind=override(omit_if_default=False),
        request=override(omit_if_default=False, unstruct_hook=hook),
        response=override(omit_if_default=False, unstruct_hook=hook),
        error=override(unstruct_hook=hook),
        usage=override(unstruct_hook=hook),
        tags=override(unstruct_hook=hook),
        metadata=override(unstruct_hook=hook),
    )

    def unstructure_interaction(inter: Interaction) -> dict[str, Any]:
        raw = inter_unstructure(inter)
        # `response` and `error` are exclusive on disk: an error means nothing came back.
        if inter.error is not None:
            raw.pop("response", None)
        return _ordered(_INTERACTION_ORDER, raw)

    conv.register_unstructure_hook(Interaction, unstructure_interaction)
    cassette_unstructure = make_dict_unstructure_fn(
        Cassette, conv, meta=override(unstruct_hook=hook))
    conv.register_unstructure_hook(
        Cassette, lambda c: _ordered(_CASSETTE_ORDER, cassette_unstructure(c))
    )
    every_field = {f.name: override(struct_hook=_passthrough) for f in attrs.fields(Interaction)}
    conv.register_structure_hook(
        Interaction, make_dict_structure_fn(Interaction, conv, **every_field)  # type: ignore[arg-type]
    )
    return conv


converter = _make_converter()
# The writer copies every value into exact JSON types anyway (agenttape._storage), so it
# starts from this one: the same shape on disk, without first copying every nested value.
_shallow_converter = _make_converter(shallow=True)


def shallow_dict(cassette: Cassette) -> dict[str, Any]:
    """``cassette.to_dict()`` whose nested values are the cassette's own (not copies)."""
    result: dict[str, Any] = _shallow_converter.unstructure(cassette)
    return result


def _structure_interaction(
    data: Any, path: str | Path | None, position: int | None
) -> Interaction:
    if not isinstance(data, dict):
        raise CassetteCorruptError(
            path, f"an interaction must be a mapping, got {type(data).__name__}", index=position
        )
    if "response" in data and data.get("error") is not None:
        raise CassetteCorruptError(
            path, "an interaction has either `response` or `error`, not both",
            index=position, field="error",
        )
    try:
        result: Interaction = converter.structure(data, Interaction)
    except ForbiddenExtraKeysError as exc:
        extra = sorted(str(k) for k in exc.extra_fields)
        raise CassetteCorruptError(
            path, f"unknown field(s) {', '.join(extra)}", index=position, field=extra[0]
        ) from None
    except KeyError as exc:
        raise CassetteCorruptError(
            path, "a required field is missing", index=position, field=str(exc.args[0])
        ) from None
    except (TypeError, ValueError) as exc:
        field = _validator_field(exc)
        raise CassetteCorruptError(path, str(exc.args[0]), index=position, field=field) from None
    return result


def _validator_field(exc: Exception) -> str | None:
    # attrs' instance_of passes the Attribute as args[1]; our validators name it in the text.
    if len(exc.args) > 1 and isinstance(exc.args[1], attrs.Attribute):
        return exc.args[1].name
    text = str(exc.args[0]) if exc.args else ""
    name = text.split(" ", 1)[0]
    return name if name in attrs.fields_dict(Interaction) else None


def _structure_cassette(data: Any, path: str | Path | None) -> Cassette:
    if not isinstance(data, dict):
        raise CassetteCorruptError(
            path, f"the top level must be a mapping, got {type(data).__name__}"
        )
    version = data.get("version", "1")
    if type(version) is int and str(version) in SUPPORTED_VERSIONS:
        # A hand-edited `version: 1` (unquoted) means what it says.
        version = str(version)
    if version not in SUPPORTED_VERSIONS:
        raise SchemaVersionError(path, version, SUPPORTED_VERSIONS)
    extra = sorted(str(k) for k in data if k not in _CASSETTE_ORDER)
    if extra:
        raise CassetteCorruptError(path, f"unknown top-level field(s) {', '.join(extra)}",
                                   field=extra[0])
    raw = data.get("interactions") or []
    if not isinstance(raw, list):
        raise CassetteCorruptError(path, "`interactions` must be a list", field="interactions")
    interactions = [_structure_interaction(item, path, i) for i, item in enumerate(raw)]
    meta = data.get("meta")
    try:
        return Cassette(
            version=version,
            created_at=data.get("created_at", ""),
            run_id=data.get("run_id", ""),
            meta={} if meta is None else meta,
            interactions=interactions,
        )
    except TypeError as exc:
        raise CassetteCorruptError(path, str(exc.args[0]), field=_validator_field(exc)) from None
