"""JSON documents nested to a given depth, for the tests of a dialect's ``max_json_depth``."""

from __future__ import annotations

from typing import Any, Literal

Shape = Literal["arrays", "objects", "mixed"]
SHAPES: tuple[Shape, ...] = ("arrays", "objects", "mixed")


def nested(levels: int, shape: Shape = "arrays", leaf: Any = "leaf") -> Any:
    """``levels`` arrays or objects (or the two in turn), each holding the next,
    around ``leaf``: a document ``levels`` deep. Built without recursion."""
    value = leaf
    for level in range(levels):
        as_array = shape == "arrays" or (shape == "mixed" and level % 2 == 0)
        value = [value] if as_array else {"k": value}
    return value
