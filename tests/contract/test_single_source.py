"""Every constant of the contract exists once, in contract/: the edge, the aggregator and the
review UI read phases, severities, event types and upload headers from there (the UI through
the API), never from a copy of their own."""

from __future__ import annotations

import re

import pytest

from contract import uploads, vocabulary
from tests.conftest import REPO

SOURCES = [
    p
    for folder in ("edge", "aggregator")
    for p in sorted((REPO / folder).rglob("*"))
    if p.suffix in (".py", ".js", ".html") and "migrations" not in p.parts
]


def _quoted(values: tuple[str, ...]) -> re.Pattern[str]:
    """Two or more of ``values`` as neighbouring string literals: a copied list."""
    one = "|".join(re.escape(v) for v in values)
    return re.compile(rf"""["'](?:{one})["']\s*[,|>]\s*(?:<[^>]*>\s*)*["']?(?:{one})["']""")


@pytest.mark.parametrize(
    ("what", "pattern"),
    [
        ("phases", _quoted(vocabulary.PHASES)),
        ("severities", _quoted(vocabulary.SEVERITIES)),
        ("event types", _quoted(vocabulary.EVENT_TYPES)),
        (
            "event types as UI options",
            re.compile(rf"<option[^>]*>\s*(?:{'|'.join(vocabulary.EVENT_TYPES)})\s*</option>"),
        ),
        (
            "upload header names",
            re.compile(
                "|".join(
                    re.escape(f'"{h}"')
                    for h in (uploads.HEADER_EVENT_ID, uploads.HEADER_KIND, uploads.HEADER_SHA256)
                ),
                re.IGNORECASE,
            ),
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_contract_constants_are_not_copied(what: str, pattern: re.Pattern[str]) -> None:
    copies = [
        f"{p.relative_to(REPO)}:{n}"
        for p in SOURCES
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not copies, f"{what} copied outside contract/: {copies}"


def test_the_pattern_finds_a_copy() -> None:
    """The check above can fail: it recognises the copies it is there to forbid."""
    assert _quoted(vocabulary.SEVERITIES).search('Literal["low", "medium", "high"]')
    assert _quoted(vocabulary.PHASES).search("PHASES = ('start', 'update', 'end')")
    assert _quoted(vocabulary.EVENT_TYPES).search('["crowding", "litter"]')
