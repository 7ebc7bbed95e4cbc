"""Redaction: keep keys, tokens and e-mail addresses out of cassettes.

A :class:`Redactor` is built once per session from the ``[redact]`` configuration and then
called for every recorded request and response, so everything expensive (normalising the
denylist, compiling patterns, validating user regexes) happens in ``__init__`` and the
instance is immutable afterwards (safe to share between threads). On the hot path a
built-in pattern only runs on a string containing its literal prefix ("sk-", "AKIA", "@"…),
checked with plain substring tests, and strings shorter than any key skip even those;
most strings of a request therefore cost no regex at all.

Two invariants the rest of agenttape relies on:

* **Idempotence** — ``redact(redact(x)) == redact(x)``. The placeholder is treated as an
  opaque barrier: text is split around it before any pattern runs, so no pattern (not even a
  user regex such as ``[A-Z]+``) can match inside it or across it, and redaction repeats
  until nothing changes, so a replacement can never uncover a new match.
* **Validation is independent of redaction.** :meth:`Redactor.find_secrets` works the same
  with ``enabled=False``; ``agenttape validate`` uses it to fail on anything that survived.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import SplitResult, quote_plus, unquote_plus, urlsplit, urlunsplit

from ._b64 import Blob

__all__ = [
    "DEFAULT_DENYLIST",
    "DEFAULT_PLACEHOLDER",
    "DEFAULT_QUERY_DENYLIST",
    "DENYLISTED_KEY",
    "DENYLISTED_QUERY_PARAM",
    "URL_PASSWORD",
    "Redactor",
]

DEFAULT_PLACEHOLDER = "***REDACTED***"

# Keys whose whole value is secret wherever they appear: headers, JSON fields at any depth,
# query parameters. Compared after lower-casing with "_" folded to "-", so "X_Api_Key"
# matches "x-api-key". Whole keys only: "max_tokens" and "total_tokens" are not "token".
# `openai-organization` / `openai-project` are deliberately absent: they identify, they do
# not authenticate, and recording them keeps cassettes from different orgs apart.
DEFAULT_DENYLIST: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "refresh_token",
    "client_secret",
    "password",
    "secret",
    "cookie",
    "set-cookie",
    "x-goog-api-key",
)

# Extra names that are secret only as URL query parameters. `key` is how Google APIs take
# an API key (`?key=AIza...`); in a JSON body "key" is far too common to redact. `sig` and
# the AWS names cover Azure SAS and S3 pre-signed URLs.
DEFAULT_QUERY_DENYLIST: tuple[str, ...] = (
    "key",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
)

# Names find_secrets reports for a real value where only the placeholder belongs (the
# pattern findings are named after the pattern: "openai_api_key", "email", "regex:<re>").
DENYLISTED_KEY = "denylisted_key"
DENYLISTED_QUERY_PARAM = "denylisted_query_param"
URL_PASSWORD = "url_password"

# Every built-in pattern starts with a literal and checks the character *before* that
# literal with a fixed-width lookbehind placed after it. A leading lookbehind would stop
# `re` from jumping straight to the literal and make each search ~20x slower. The check
# itself keeps ordinary words safe: a prefix glued to a longer token ("task-force…",
# "my_sk-…") is not a key.
_B = "[A-Za-z0-9_-]"

# (name, gate literals, pattern) in the order they are applied. A pattern only runs on a
# string containing one of its gate literals (a plain substring test, far cheaper than any
# regex); a pattern without gates always runs. Private keys go first so a key block is
# removed whole before another pattern could cut it in two.
_BUILTIN_RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    # An unterminated block (a truncated log line) is redacted to the end of the string.
    (
        "private_key",
        ("PRIVATE KEY-----",),
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?"
        r"(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    ),
    # Only the credential is replaced so "Authorization: Bearer ***REDACTED***" in a log
    # line stays readable. The token must be 16+ RFC 6750 characters with at least one
    # non-letter, so prose such as "the bearer of responsibilities" is left alone.
    (
        "bearer_token",
        ("earer",),
        r"(?P<scheme>[Bb]earer(?<![A-Za-z0-9_][Bb]earer)[ \t]+)"
        r"(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/-]{16,}=*",
    ),
    ("anthropic_api_key", ("sk-ant-",), rf"sk-ant-(?<!{_B}sk-ant-)[A-Za-z0-9_-]{{20,}}"),
    # ≥ 20 characters after the prefix: real keys have 40+, "sk-" in prose never has 20.
    # "sk-ant-" is left to the rule above so find_secrets names the right provider.
    (
        "openai_api_key",
        ("sk-",),
        rf"sk-(?<!{_B}sk-)(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{{20,}}",
    ),
    ("slack_token", ("xox",), rf"xox[abposr]-(?<!{_B}xox.-)[A-Za-z0-9-]{{10,}}"),
    (
        "github_token",
        ("gh", "github_pat_"),
        r"gh[pousr]_(?<![A-Za-z0-9_]gh._)[A-Za-z0-9]{20,}"
        r"|github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{20,}",
    ),
    # Access key ids are exactly 20 characters; ASIA is the temporary (STS) form.
    (
        "aws_access_key_id",
        ("AKIA", "ASIA"),
        r"A[KS]IA(?<![A-Za-z0-9]A.IA)[0-9A-Z]{16}(?![0-9A-Z])",
    ),
    ("google_api_key", ("AIza",), rf"AIza(?<!{_B}AIza)[0-9A-Za-z_-]{{35}}"),
)

# The lookbehind makes each run of local-part characters a single attempt; without it a
# long base64 string would be rescanned from every position (quadratic time).
_EMAIL_RULE = (
    "email",
    ("@",),
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
)

# unchanged_json() looks for these instead of a rule's gate where the gate is a common
# pair of letters: "gh" is in most English text, a GitHub token starts "gh" + one of
# "pousr" + "_" (the github_token rule below).
_FAST_GATES = {"gh": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")}

# Shortest string any gated built-in pattern can match except an e-mail ("xoxb-" + 10);
# shorter strings (most of a request: roles, model names, ids) skip the gate tests.
_MIN_TOKEN_LEN = 15

# Redaction normally converges in one pass; a second pass only runs when the first
# changed something. The cap guards against a pathological user regex.
_MAX_PASSES = 8

# Characters kept literal when the placeholder goes into a query string: RFC 3986
# sub-delimiters that do not separate parameters, so "***REDACTED***" stays readable.
_QUERY_SAFE = "*!$'(),;:@/~"


_SPACE = re.compile(r"\s")
# startswith() with a tuple beats lower-casing every string on the hot path.
_URL_PREFIXES = ("http://", "https://", "HTTP://", "HTTPS://", "Http://", "Https://")


# (name reported by find_secrets, gate literals, compiled pattern)
_Rule = tuple[str, tuple[str, ...], re.Pattern[str]]
# A binary body is scanned as bytes with the key patterns (not e-mail: "@" is common in
# binary data and an address there is no credential): (name, gates, pattern).
_ByteRule = tuple[str, tuple[bytes, ...], "re.Pattern[bytes]"]
# One replacement found in a text: (start, end, replacement, rule name).
_Edit = tuple[int, int, str, str]

# Where base64 payloads sit in recorded data (storage uses the same key for its assets).
_B64_KEY = "body_b64"
_B64_NEEDLE = f'"{_B64_KEY}"'


def _norm_key(key: str) -> str:
    return key.lower().replace("_", "-")


def _embedded_key_rule(names: Iterable[str]) -> re.Pattern[str]:
    """A denylisted key's value inside text: JSON text (``"password": "x"``, also once
    more escaped, ``\\"password\\": \\"x\\"``, as in a JSON string holding JSON: an
    echoed request body, tool-call arguments) and ``password=x`` (form bodies, URLs in
    error messages). Only the value is replaced; group ``k1``..``k4`` says which form."""
    alternatives = "|".join(
        re.escape(name).replace("\\-", "[-_]") for name in sorted(names, key=len, reverse=True)
    )
    n = f"(?:{alternatives})"
    return re.compile(
        rf'(?P<k1>"{n}" ?:[ \t]*")(?P<v1>(?:[^"\\\n]|\\.)+)(?=")'
        rf'|(?P<k2>\\"{n}\\" ?:[ \t]*\\")(?P<v2>[^"\n]+?)(?=\\")'
        rf'|(?P<k3>"{n}" ?:[ \t]*)(?P<v3>-?[0-9][0-9.eE+-]*)'
        rf"|(?P<k4>(?<![A-Za-z0-9_-]){n}=)(?P<v4>[^\s&\"'<>;,]+)",
        re.IGNORECASE | re.ASCII,
    )


def _json_key_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """Finds ``"name":`` for any of ``names`` as a key in JSON text; None when a name holds
    a character JSON escapes (it could not be found that way)."""
    names = tuple(names)
    if not names or any(json.dumps(name, ensure_ascii=False) != f'"{name}"' for name in names):
        return None
    return re.compile('"(?:' + "|".join(map(re.escape, names)) + ')":')


class Redactor:
    """Removes secrets from recorded data; build once per session.

    ``denylist`` adds key names to :data:`DEFAULT_DENYLIST`; ``regexes`` adds patterns
    whose every match is replaced. An invalid regex warns once and is ignored. With
    ``enabled=False`` every ``redact*`` method is the identity, while
    :meth:`find_secrets` still reports what would be a problem.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        denylist: Iterable[str] = (),
        regexes: Iterable[str] = (),
        redact_emails: bool = True,
        placeholder: str = DEFAULT_PLACEHOLDER,
    ) -> None:
        if not isinstance(placeholder, str) or not placeholder:
            # An empty placeholder would make a redacted value indistinguishable from an
            # empty one and leave nothing to split on for idempotence.
            raise ValueError(f"placeholder must be a non-empty string; got {placeholder!r}")
        self.enabled = enabled
        self.placeholder = placeholder
        self.redact_emails = redact_emails
        self.denylist: frozenset[str] = frozenset(
            _norm_key(k) for k in (*DEFAULT_DENYLIST, *denylist)
        )
        self._query_denylist = self.denylist | {_norm_key(k) for k in DEFAULT_QUERY_DENYLIST}
        self._query_placeholder = quote_plus(placeholder, safe=_QUERY_SAFE)

        rules = [*_BUILTIN_RULES, _EMAIL_RULE] if redact_emails else list(_BUILTIN_RULES)
        # First, so that a value is replaced whole before a pattern could cut it in two.
        self._embedded = _embedded_key_rule(self.denylist)
        self._rules: tuple[_Rule, ...] = (
            (DENYLISTED_KEY, ('"', "="), self._embedded),
            *((name, gates, re.compile(pattern)) for name, gates, pattern in rules),
        )
        self._byte_rules: list[_ByteRule] = [
            (name, tuple(g.encode() for g in gates), re.compile(pattern.encode()))
            for name, gates, pattern in _BUILTIN_RULES
        ]
        self._gates = tuple(
            (gate, i) for i, (_name, gates, _rx) in enumerate(self._rules) for gate in gates
        )
        self._bearer = next(rx for name, _, rx in self._rules if name == "bearer_token")
        self._email_rules = tuple(rule for rule in self._rules if rule[0] == "email")

        self.regexes: tuple[str, ...] = ()
        user: list[_Rule] = []
        for pattern in regexes:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                warnings.warn(
                    f"agenttape: ignoring invalid [redact] regex {pattern!r}: {exc}",
                    UserWarning,
                    stacklevel=2,
                )
                continue
            user.append((f"regex:{pattern}", (), compiled))
            self.regexes += (pattern,)
            # A pattern bytes cannot express (\\u escapes) only misses binary bodies.
            with contextlib.suppress(re.error, UnicodeEncodeError):
                self._byte_rules.append((f"regex:{pattern}", (), re.compile(pattern.encode())))
        self._user: tuple[_Rule, ...] = tuple(user)
        # For unchanged_json(): what must be absent from a value's JSON text for redact()
        # to have nothing to do (denylisted keys as they appear there, pattern gates).
        self._key_needles = _json_key_pattern(sorted(self.denylist))
        # A denylisted key inside a string (the embedded-key rule): every name contains one
        # of these few "cores" ("api-key", "token"...), cheap to look for with `in`; only
        # around an occurrence is the precise pattern tried.
        cores: list[str] = []
        for name in sorted(self.denylist, key=len):
            if not any(core in name for core in cores):
                cores.append(name)
        self._cores = tuple(cores)
        self._cores_any = tuple({v for c in cores for v in (c, c.replace("-", "_"))})
        self._names = tuple(sorted(self.denylist))
        # The last two characters of every name: most "=" in a request fail this set test,
        # which costs less than endswith() over all the names.
        self._name_ends = (frozenset(name[-2:] for name in self._names)
                           if all(len(name) >= 2 for name in self._names) else None)
        names = "|".join(map(re.escape, self._names))
        # A key inside a string, as the canonical JSON of a request shows it (folded,
        # quotes escaped once or more); tried only where `\":` occurs.
        self._embedded_needle = re.compile(f'\\\\+"(?:{names})\\\\+" ?:')
        self._query_needles: re.Pattern[str] | None = None
        if self._key_needles is not None and not any(
            c in name for name in self._query_denylist for c in "?&=#%+"
        ):
            self._query_needles = re.compile(
                "[?&](?:" + "|".join(map(re.escape, sorted(self._query_denylist))) + ")="
            )
        gates = {
            refined for _n, gates, rx in self._rules if rx is not self._embedded
            for gate in gates for refined in _FAST_GATES.get(gate, (gate,))
        }
        # A gate holding another ("sk-ant-" holds "sk-") can only be found where that one is.
        self._literals = tuple(sorted(
            gate for gate in gates if not any(g != gate and g in gate for g in gates)))
        # Gates sharing their first two characters ("ghp_", "gho_"...) are looked for only
        # where their common start is: (start, gates), no gates when the start is a gate.
        groups: dict[str, list[str]] = {}
        for gate in self._literals:
            groups.setdefault(gate[:2], []).append(gate)
        literal_groups: list[tuple[str, tuple[str, ...]]] = []
        for group in groups.values():
            start = group[0]
            while not all(gate.startswith(start) for gate in group):
                start = start[:-1]
            literal_groups.append((start, () if start in group else tuple(group)))
        self._literal_groups = tuple(literal_groups)

    @classmethod
    def from_config(cls, redact_cfg: Any) -> Redactor:
        """Build from any object with the ``[redact]`` attributes (``None`` → defaults)."""
        if redact_cfg is None:
            return cls()
        return cls(
            enabled=bool(getattr(redact_cfg, "enabled", True)),
            denylist=tuple(getattr(redact_cfg, "denylist", ()) or ()),
            regexes=tuple(getattr(redact_cfg, "regexes", ()) or ()),
            redact_emails=bool(getattr(redact_cfg, "redact_emails", True)),
            placeholder=getattr(redact_cfg, "placeholder", DEFAULT_PLACEHOLDER),
        )

    def __repr__(self) -> str:
        extra = sorted(self.denylist - {_norm_key(k) for k in DEFAULT_DENYLIST})
        return (
            f"Redactor(enabled={self.enabled!r}, denylist={extra!r}, "
            f"regexes={list(self.regexes)!r}, redact_emails={self.redact_emails!r}, "
            f"placeholder={self.placeholder!r})"
        )

    # -- public redaction API -------------------------------------------------------

    def unchanged_json(self, text: str) -> bool:
        """Whether :meth:`redact` would leave the value whose canonical JSON is ``text``
        (``json.dumps(..., ensure_ascii=False)``) as it is.

        True only when no key is on the denylist, no URL holds a password or a denylisted
        query parameter and no pattern's literal occurs anywhere in the text: a few
        substring tests, where :meth:`redact` walks the whole value. False means "maybe":
        call :meth:`redact`. The engine uses it to match a replayed request without
        copying it.
        """
        if not self.enabled:
            return True
        if self._user or self._key_needles is None or _B64_NEEDLE in text:
            return False
        for first, group in self._literal_groups:
            if first in text:
                if not group:
                    return False
                for literal in group:
                    if literal in text:
                        return False
        folded = text.lower().replace("_", "-")
        # Both searches below look for a denylisted name, and every name holds a core: a
        # text without any core (most tool calls) skips them.
        for core in self._cores:
            if core in folded:
                if self._key_needles.search(folded) or self._embedded_in(folded):
                    return False
                break
        if "://" in text:
            # A URL's password or a denylisted query parameter; an encoded name (%, +)
            # is left to redact() itself.
            if self._query_needles is None or "@" in text or "%" in text or "+" in text:
                return False
            # A query parameter follows a "?", so the search starts at the first one.
            start = folded.find("?")
            return start < 0 or self._query_needles.search(folded, start) is None
        return True

    def is_denylisted(self, key: str) -> bool:
        """Whether ``key`` (a header, JSON field or similar) has its whole value redacted."""
        return _norm_key(key) in self.denylist

    def redact(self, value: Any, *, joined: bool = False) -> Any:
        """Return a redacted copy of a JSON-like ``value``; the input is never mutated.

        Dicts, lists and tuples are rebuilt (tuples become lists), so the result shares no
        container with the input and the caller may mutate either freely; strings and
        other scalars are immutable and are returned as they are when unchanged. A value
        under a denylisted key becomes the placeholder whatever its type. Strings that are
        ``http(s)://`` URLs are redacted with :meth:`redact_url`. A ``body_b64`` value
        (a binary body) is decoded and searched as bytes; a key found there is overwritten
        with ``*`` bytes of the same length, so offsets inside the file stay valid.

        With ``joined``, the strings at the same place in the items of a list are also
        read as one text, and a secret split across items is removed from all of them:
        a recorded stream arrives in pieces, and a key a model repeats may be cut
        anywhere (the engine passes it for streams).
        """
        if not self.enabled:
            return value
        if joined:
            value = self._copy(value)
            self._join_lists(value)
        return self._walk(value)

    def redact_text(self, text: str) -> str:
        """Replace every secret pattern in ``text`` with the placeholder."""
        if not self.enabled:
            return text
        return self._text(text)

    def redact_url(self, url: str) -> str:
        """Redact a URL, keeping it parseable and its parameter order.

        Denylisted query parameters (plus ``key``, ``sig``, ``signature`` and the AWS
        pre-signing ones) get the placeholder as their value; a ``user:password@``
        password becomes the placeholder; secret patterns in the user name, path, other
        query values and fragment are replaced. Untouched parameters keep their exact
        encoding, so redacting a URL twice gives the same URL.
        """
        if not self.enabled:
            return url
        return self._url(url)

    def redact_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Return headers with denylisted values replaced and patterns redacted.

        Header names keep their case; a denylisted header's whole value becomes the
        placeholder (``authorization: ***REDACTED***``, not ``Bearer ***REDACTED***``).
        """
        if not self.enabled:
            return dict(headers)
        return {
            name: self.placeholder if self.is_denylisted(name) else self._text(value)
            for name, value in headers.items()
        }

    def find_secrets(self, value: Any) -> list[tuple[str, str]]:
        """List ``(path, pattern name)`` for every secret left in ``value``.

        Paths look like ``interactions[3].request.headers.authorization``. A value equal
        to the placeholder, empty, ``None`` or a boolean under a denylisted key is fine;
        anything else there is reported as ``denylisted_key``. Each pattern is reported
        once per path. Works whether or not redaction is enabled.
        """
        found: dict[tuple[str, str], None] = {}
        self._find(value, "", found)
        return list(found)

    # -- strings ------------------------------------------------------------------

    def _active(self, text: str) -> list[_Rule]:
        """The rules worth running on ``text``: built-ins whose gate is present, then users'."""
        if len(text) >= _MIN_TOKEN_LEN:
            # One flat comprehension over (gate, rule) pairs: a generator per rule costs
            # more than the substring tests themselves on typical message-sized strings.
            hits = {i for gate, i in self._gates if gate in text}
            active = [rule for i, rule in enumerate(self._rules) if i in hits] if hits else []
        elif "@" in text:
            active = list(self._email_rules)
        else:
            active = []
        if active and active[0][2] is self._embedded and not self._names_in(text):
            del active[0]  # a quote or "=", but no denylisted name anywhere
        active.extend(self._user)
        return active

    def _names_in(self, text: str) -> bool:
        lowered = text.lower()
        return any(core in lowered for core in self._cores_any)

    def _embedded_in(self, folded: str) -> bool:
        """Whether the folded canonical JSON may hold a denylisted key inside a string: a
        JSON key (``\\"name\\":``, the rule allows one space before the colon) or
        ``name=``. Found from the separators, which are rare in requests."""
        for separator in ('\\":', '\\" :'):
            at = folded.find(separator)
            while at != -1:
                if self._embedded_needle.search(folded, max(0, at - 64), at + 4):
                    return True
                at = folded.find(separator, at + 1)
        ends = self._name_ends
        at = folded.find("=")
        while at != -1:
            if (ends is None or folded[at - 2:at] in ends) and folded.endswith(self._names, 0, at):
                return True
            at = folded.find("=", at + 1)
        return False

    def _replace(self, m: re.Match[str]) -> str:
        if m.start() == m.end():
            # A zero-width user match ("x*") would put a placeholder between all characters.
            return ""
        if m.re is self._bearer:
            return m.group("scheme") + self.placeholder
        if m.re is self._embedded:
            return self._embedded_replacement(m)[1]
        return self.placeholder

    def _embedded_replacement(self, m: re.Match[str]) -> tuple[str, str]:
        """``(value group, replacement)`` for a match of the embedded-key rule."""
        escaped = json.dumps(self.placeholder, ensure_ascii=False)[1:-1]
        if m.group("k1") is not None:
            return "v1", m.group("k1") + escaped
        if m.group("k2") is not None:
            twice = json.dumps(escaped, ensure_ascii=False)[1:-1]
            return "v2", m.group("k2") + twice
        if m.group("k3") is not None:
            return "v3", f'{m.group("k3")}"{escaped}"'
        return "v4", m.group("k4") + self.placeholder

    def _once(self, text: str, rules: list[_Rule]) -> str:
        placeholder = self.placeholder
        for _name, _gates, rx in rules:
            if placeholder in text:
                # Patterns never see the placeholder, so none can match inside or across it
                # (a user regex like "[A-Z]+" would otherwise grow it on every pass).
                text = placeholder.join(
                    rx.sub(self._replace, part) for part in text.split(placeholder)
                )
            else:
                text = rx.sub(self._replace, text)
        return text

    def _text(self, text: str) -> str:
        if len(text) < _MIN_TOKEN_LEN and not self._user and "@" not in text:
            return text  # keys, roles, model names: the common case, kept call-free
        rules = self._active(text)
        if not rules:
            return text
        out = self._once(text, rules)
        if out == text:
            return text
        # A replacement can, rarely, make a neighbouring pattern newly visible (a user
        # regex consumed the character that blocked a built-in lookbehind); repeat until
        # stable so that redaction is idempotent.
        for _ in range(_MAX_PASSES):
            again = self._once(out, self._active(out))
            if again == out:
                break
            out = again
        return out

    def _scan(self, text: str) -> Iterator[str]:
        """Names of the patterns matching ``text`` outside placeholder occurrences."""
        rules = self._active(text)
        if not rules:
            return
        for part in text.split(self.placeholder):
            for name, _gates, rx in rules:
                if any(m.end() > m.start() for m in rx.finditer(part)):
                    yield name

    # -- URLs ---------------------------------------------------------------------

    @staticmethod
    def _looks_like_url(text: str) -> bool:
        # Only a whole-string URL gets query-parameter treatment; a URL inside prose is
        # covered by the text patterns.
        return text.startswith(_URL_PREFIXES) and not _SPACE.search(text)

    def _split_url(self, url: str) -> SplitResult | None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            return None
        return parts

    def _url(self, url: str) -> str:
        parts = self._split_url(url)
        if parts is None:
            return self._text(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, colon, password = userinfo.partition(":")
            user = self._text(user)
            if password:
                password = self.placeholder
            netloc = f"{user}{colon}{password}@{hostport}"
        query = "&".join(self._query_piece(piece) for piece in parts.query.split("&"))
        if not parts.query:
            query = ""
        result = urlunsplit(
            (parts.scheme, netloc, self._text(parts.path), query, self._text(parts.fragment))
        )
        # urlunsplit drops an empty "?" or "#"; keep the input's exact form when nothing
        # needed redacting so that redaction never changes a URL it has no reason to.
        return url if result == urlunsplit(parts) else result

    def _query_piece(self, piece: str) -> str:
        name, eq, raw_value = piece.partition("=")
        if not eq:
            return piece
        if _norm_key(unquote_plus(name)) in self._query_denylist:
            return f"{name}={self._query_placeholder}"
        value = unquote_plus(raw_value)
        redacted = self._text(value)
        if redacted == value:
            return piece
        return f"{name}={quote_plus(redacted, safe=_QUERY_SAFE)}"

    def _find_url(self, url: str, path: str, found: dict[tuple[str, str], None]) -> None:
        parts = self._split_url(url)
        if parts is None:
            for name in self._scan(url):
                found[(path, name)] = None
            return
        texts = [parts.path, parts.fragment]
        if "@" in parts.netloc:
            userinfo = parts.netloc.rpartition("@")[0]
            user, colon, password = userinfo.partition(":")
            texts.append(user)
            if colon and password not in ("", self.placeholder):
                found[(path, URL_PASSWORD)] = None
        for piece in parts.query.split("&"):
            name, eq, raw_value = piece.partition("=")
            if not eq:
                continue
            value = unquote_plus(raw_value)
            if _norm_key(unquote_plus(name)) in self._query_denylist:
                if value not in ("", self.placeholder):
                    found[(path, DENYLISTED_QUERY_PARAM)] = None
            else:
                texts.append(value)
        for text in texts:
            for name in self._scan(text):
                found[(path, name)] = None

    # -- structures ---------------------------------------------------------------

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            if self._looks_like_url(value):
                return self._url(value)
            return self._text(value)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                if isinstance(key, str):
                    if _norm_key(key) in self.denylist:
                        out[key] = self.placeholder
                        continue
                    if key == _B64_KEY and isinstance(item, str):
                        out[key] = self._b64(item)
                        continue
                    if key == _B64_KEY and isinstance(item, Blob):
                        for start, end, _name in self._binary_spans(item.data):
                            item.mask(start, end)  # in place: the body is held once
                        out[key] = item
                        continue
                    # A secret used as a key (an e-mail mapping, say) is redacted too; two
                    # such keys in one dict would collide, so later ones are numbered
                    # ("***REDACTED***#2") rather than silently overwritten.
                    new_key = self._text(key)
                    if new_key in out:
                        n = 2
                        while f"{new_key}#{n}" in out:
                            n += 1
                        new_key = f"{new_key}#{n}"
                    out[new_key] = self._walk(item)
                else:
                    out[key] = self._walk(item)
            return out
        if isinstance(value, (list, tuple)):
            return [self._walk(item) for item in value]
        return value

    def _find(self, value: Any, path: str, found: dict[tuple[str, str], None]) -> None:
        if isinstance(value, list) and len(value) > 1:
            self._find_joined(value, path, found)
        if isinstance(value, str):
            if self._looks_like_url(value):
                self._find_url(value, path, found)
            else:
                for name in self._scan(value):
                    found[(path, name)] = None
        elif isinstance(value, dict):
            for key, item in value.items():
                # The path is printed by `agenttape validate`: never echo a secret key.
                shown = self._text(str(key))
                child = f"{path}.{shown}" if path else shown
                if isinstance(key, str):
                    for name in self._scan(key):
                        found[(child, name)] = None
                    if _norm_key(key) in self.denylist:
                        if not (
                            item is None or isinstance(item, bool) or item in ("", self.placeholder)
                        ):
                            found[(child, DENYLISTED_KEY)] = None
                        continue
                    if key == _B64_KEY and isinstance(item, Blob):
                        for _start, _end, name in self._binary_spans(item.data):
                            found[(child, name)] = None
                        continue
                    if key == _B64_KEY and isinstance(item, str):
                        payload = _b64_payload(item)
                        if payload is not None:
                            for _start, _end, name in self._binary_spans(payload):
                                found[(child, name)] = None
                            continue
                self._find(item, child, found)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                self._find(item, f"{path}[{i}]", found)

    # -- binary bodies ------------------------------------------------------------

    def _b64(self, text: str) -> str:
        payload = _b64_payload(text)
        if payload is None:
            return self._text(text)  # not base64 after all: an ordinary string
        spans = self._binary_spans(payload)
        if not spans:
            return text
        buf = payload if isinstance(payload, bytearray) else bytearray(payload)
        del payload
        for start, end, _name in spans:
            buf[start:end] = b"*" * (end - start)
        return base64.b64encode(buf).decode("ascii")

    def _binary_spans(self, payload: bytes | bytearray) -> list[tuple[int, int, str]]:
        """Where the key patterns (and users' regexes) match in ``payload``."""
        spans: list[tuple[int, int, str]] = []
        for name, gates, rx in self._byte_rules:
            if gates and not any(gate in payload for gate in gates):
                continue
            for m in rx.finditer(payload):
                start = m.end("scheme") if name == "bearer_token" else m.start()
                if m.end() > start:
                    spans.append((start, m.end(), name))
        return spans

    # -- secrets split across the items of a list (streams) -------------------------

    def _copy(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self._copy(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._copy(item) for item in value]
        return value

    def _join_lists(self, value: Any) -> None:
        """Redact, in place, secrets split across the items of every list in ``value``."""
        if isinstance(value, dict):
            for item in value.values():
                self._join_lists(item)
        elif isinstance(value, list):
            for item in value:
                self._join_lists(item)
            if len(value) > 1:
                for refs in _leaf_groups(value).values():
                    if len(refs) > 1:
                        self._join_group(refs)

    def _join_group(self, refs: list[tuple[Any, Any]]) -> None:
        texts: list[str] = [container[key] for container, key in refs]
        for _ in range(_MAX_PASSES):
            edits = self._edits("".join(texts))
            if not edits:
                break
            texts = _apply_edits(texts, edits)
        for (container, key), text in zip(refs, texts, strict=True):
            container[key] = text

    def _edits(self, text: str) -> list[_Edit]:
        """Every replacement the text rules make in ``text``, in order, not overlapping."""
        edits: list[_Edit] = []
        offset = 0
        for part in text.split(self.placeholder):
            for name, _gates, rx in self._active(part):
                for m in rx.finditer(part):
                    start, end = m.span()
                    if m.re is self._bearer:
                        start = m.end("scheme")
                        replacement = self.placeholder
                    elif m.re is self._embedded:
                        group, replacement = self._embedded_replacement(m)
                        replacement = replacement[m.start(group) - start:]
                        start = m.start(group)
                    else:
                        replacement = self.placeholder
                    if end > start:
                        edits.append((offset + start, offset + end, replacement, name))
            offset += len(part) + len(self.placeholder)
        edits.sort(key=lambda e: (e[0], -e[1]))
        kept: list[_Edit] = []
        for edit in edits:
            if not kept or edit[0] >= kept[-1][1]:
                kept.append(edit)
        return kept

    def _find_joined(self, items: list[Any], path: str,
                     found: dict[tuple[str, str], None]) -> None:
        for where, refs in _leaf_groups(items).items():
            if len(refs) < 2:
                continue
            texts = [container[key] for container, key in refs]
            bounds: list[int] = []
            total = 0
            for text in texts:
                total += len(text)
                bounds.append(total)
            for start, end, _replacement, name in self._edits("".join(texts)):
                first = next(i for i, b in enumerate(bounds) if b > start)
                if end > bounds[first]:  # inside one item it is reported there
                    found[(f"{path}[{first}]{where}", name)] = None


def _b64_payload(text: str) -> bytes | bytearray | None:
    from . import _b64

    return _b64.decode(text)


def _leaf_groups(items: list[Any]) -> dict[str, list[tuple[Any, Any]]]:
    """The strings of each item of ``items`` by their place inside the item (``""`` for
    an item that is a string, ``.data.delta.text`` and the like), in item order, as
    ``(container, key)`` references. Binary bodies are left out."""
    groups: dict[str, list[tuple[Any, Any]]] = {}

    def visit(container: Any, key: Any, where: str) -> None:
        value = container[key]
        if isinstance(value, str):
            groups.setdefault(where, []).append((container, key))
        elif isinstance(value, dict):
            for k, v in value.items():
                if k != _B64_KEY or not isinstance(v, str):
                    visit(value, k, f"{where}.{k}")
        elif isinstance(value, list):
            for i in range(len(value)):
                visit(value, i, f"{where}[{i}]")

    for index in range(len(items)):
        visit(items, index, "")
    return groups


def _apply_edits(texts: list[str], edits: list[_Edit]) -> list[str]:
    """Apply edits made on the concatenation of ``texts`` to the pieces: a replacement
    goes where its match starts; the rest of the match is cut from the later pieces."""
    out: list[str] = []
    start_of = 0
    for text in texts:
        end_of = start_of + len(text)
        pieces: list[str] = []
        pos = start_of
        for start, end, replacement, _name in edits:
            if end <= start_of or start >= end_of:
                continue
            if start >= start_of:
                pieces.append(text[pos - start_of:start - start_of])
                pieces.append(replacement)
            pos = max(pos, min(end, end_of))
        pieces.append(text[pos - start_of:])
        out.append("".join(pieces))
        start_of = end_of
    return out
