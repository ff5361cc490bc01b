"""``like_to_glob``: SQLite's GLOB of the translation matches exactly what LIKE would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from sidequest_sql.fields import check_like_pattern
from sidequest_sql.dialects.sqlite import like_to_glob
from sidequest_sql.testing.model import like_matches


def like(text: str, pattern: str) -> bool:
    """The reference: the contract model's LIKE."""
    return like_matches(pattern, text)


def ends_with_lone_backslash(pattern: str) -> bool:
    return (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1


@pytest.fixture(scope="module")
def sqlite() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    yield conn
    conn.close()


def glob(conn: sqlite3.Connection, text: str, pattern: str) -> bool:
    return bool(conn.execute("SELECT ? GLOB ?", (text, pattern)).fetchone()[0])


# Characters that mean something to LIKE or to GLOB, then anything a database stores.
special = st.sampled_from(list("%_\\*?[]^!-"))
plain = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
alphabet = st.one_of(special, special, plain, st.sampled_from(list("aAbB\n")))
patterns = st.text(alphabet, max_size=12).filter(lambda p: not ends_with_lone_backslash(p))


@st.composite
def text_for(draw: st.DrawFn, pattern: str) -> str:
    """A string the pattern probably matches, sometimes lightly mutated."""
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(next(chars))
        elif char == "%":
            out.append(draw(st.text(alphabet, max_size=3)))
        elif char == "_":
            out.append(draw(alphabet))
        else:
            out.append(char)
    text = "".join(out)
    if text and draw(st.booleans()):
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + draw(st.sampled_from(["", "x", text[i].swapcase(), text[i] * 2])) + text[i + 1 :]
    return text


@settings(max_examples=500, deadline=None)
@given(data=st.data(), pattern=patterns)
@example(data=None, pattern="a%")
def test_glob_of_translation_agrees_with_like(
    sqlite: sqlite3.Connection, data: st.DataObject | None, pattern: str
) -> None:
    texts = ["", "a", "A", "ab", "\\", "*", "[", "%", "_"]
    if data is not None:
        candidate = data.draw(text_for(pattern), label="matching")
        event("generated text matches" if like(candidate, pattern) else "generated text does not match")
        texts.append(candidate)
        texts.append(data.draw(st.text(alphabet, max_size=8), label="arbitrary"))
    translated = like_to_glob(pattern)
    for text in texts:
        assert glob(sqlite, text, translated) == like(text, pattern), (text, pattern, translated)


@pytest.mark.parametrize(
    ("text", "pattern", "matches"),
    [
        ("abc", "a%", True),
        ("Abc", "a%", False),
        ("abc", "A%", False),
        ("a", "_", True),
        ("", "_", False),
        ("", "", True),
        ("x", "", False),
        ("ab", "a_", True),
        ("a_", "a\\_", True),
        ("ab", "a\\_", False),
        ("50%", "50\\%", True),
        ("500", "50\\%", False),
        ("a\\b", "a\\\\b", True),
        ("a*b", "a*b", True),
        ("axb", "a*b", False),
        ("a?b", "a?b", True),
        ("axb", "a?b", False),
        ("[x]", "[x]", True),
        ("x", "[x]", False),
        ("a]", "a]", True),
        ("a\nb", "a_b", True),
        ("a\nb", "a%", True),
        ("日本", "日_", True),
        ("é", "É", False),
    ],
)
def test_translation_examples(sqlite: sqlite3.Connection, text: str, pattern: str, matches: bool) -> None:
    assert like(text, pattern) is matches
    assert glob(sqlite, text, like_to_glob(pattern)) is matches


@pytest.mark.parametrize("pattern", ["\\", "a\\", "a\\\\\\", "%\\"])
def test_a_pattern_ending_in_a_lone_backslash_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="queue"):
        check_like_pattern(pattern, "queue")


@pytest.mark.parametrize("pattern", ["\\\\", "a\\\\", "\\%", ""])
def test_a_pattern_ending_in_an_escaped_character_is_accepted(pattern: str) -> None:
    check_like_pattern(pattern, "queue")
