"""Hostile strings and the fixed hypothesis settings the property tests share.

`derandomize=True` and no example database: every run tries the same examples, so a
failure is reproducible and `make test` stays quick and deterministic.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# for properties that go through the whole CLI or the whole pipeline.yaml
SLOW_PROPERTY = settings(PROPERTY, max_examples=60)

# What an attacker (or a typo) puts into a value that may reach an argv, a path or a shell.
HOSTILE_TOKENS = [
    ";",
    "|",
    "&",
    "&&",
    "$(id)",
    "`id`",
    "${IFS}",
    ">",
    "<",
    "*",
    "?",
    "!",
    "'",
    '"',
    "\\",
    "--set",
    "--set=image.tag=evil",
    "-o",
    "-oProxyCommand=x",
    "--config=/etc/passwd",
    "-",
    "--",
    "../",
    "../../etc/passwd",
    "/",
    "/etc",
    "\x00",
    "\n",
    "\r",
    "\t",
    " ",
    "\u00a0",  # no-break space
    "\u2028",  # line separator
    "\u200b",  # zero-width space
    "\u202e",  # right-to-left override
    "\uff11",  # full-width digit one
    "\u2024",  # one dot leader, looks like '.'
    "\u0430",  # Cyrillic a, looks like 'a'
    "\u0131",  # dotless i
    "\ufe63",  # small hyphen-minus
    "#",
    "%00",
    "%2e%2e%2f",
    "{",
    "}",
    "@",
    ":",
    "=",
    "+",
    "~",
]

# Characters no value that reaches a command line or a path may carry.
SHELL_META = set(";|&$`<>*?!'\"\\(){}[]#~ \t\n\r\x00")

hostile_token = st.sampled_from(HOSTILE_TOKENS)


def semver() -> st.SearchStrategy[str]:
    """Versions valid by the semver.org grammar (without build metadata), optional 'v'."""
    number = st.integers(0, 10**6).map(str)
    ident = st.one_of(
        number,
        st.from_regex(r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]{0,8}", fullmatch=True),
    )
    pre = st.lists(ident, min_size=1, max_size=3).map(".".join)
    return st.builds(
        lambda v, a, b, c, p: f"{v}{a}.{b}.{c}" + (f"-{p}" if p else ""),
        st.sampled_from(["", "v"]),
        number,
        number,
        number,
        st.one_of(st.just(""), pre),
    ).filter(lambda s: len(s) <= 128)


def commit() -> st.SearchStrategy[str]:
    return st.from_regex(r"[0-9a-f]{7,40}", fullmatch=True)


def valid_name() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?", fullmatch=True)


def tainted(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid value with hostile tokens put before, inside or after it."""

    def splice(value: str, tokens: list[str], where: list[int]) -> str:
        for token, at in zip(tokens, where, strict=False):
            at = at % (len(value) + 1)
            value = value[:at] + token + value[at:]
        return value

    return st.builds(
        splice,
        base,
        st.lists(hostile_token, min_size=1, max_size=3),
        st.lists(st.integers(0, 200), min_size=3, max_size=3),
    )


def hostile_text(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Anything: arbitrary unicode, tainted valid values, and very long ones."""
    return st.one_of(
        st.text(max_size=60),
        tainted(base),
        st.builds(lambda v, n: v * n, base, st.integers(20, 200)),
        hostile_token,
    )
