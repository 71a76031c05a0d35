"""Values read from files, checked against the type hints of the dataclass they fill: one
checker for the TOML config and the JSON index manifest.

Each caller words its own error (``[search] k must be a whole number``, ``'dimension'
should be a whole number, not "x"``) from what ``WrongType`` says was expected.
"""

from __future__ import annotations

from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

_NAMES: dict[object, str] = {
    int: "a whole number",
    float: "a number",
    str: "a string",
    bool: "true or false",
    dict: "an object",
    list: "a list",
    tuple: "a list",
    NoneType: "null",
}


class WrongType(ValueError):
    """A value that is not of the type its hint names."""

    def __init__(self, expected: str, *, in_items: bool = False) -> None:
        super().__init__(expected)
        # What was expected ("a whole number"), and whether of the items of a list.
        self.expected = expected
        self.in_items = in_items


def describe(hint: Any) -> str:
    """``a whole number``, ``a list``...: the type ``hint`` names, for a message."""
    origin = get_origin(hint) or hint
    if origin in (Union, UnionType):
        return describe(next(a for a in get_args(hint) if a is not NoneType))
    return _NAMES.get(origin, str(hint))


def checked(value: object, hint: Any) -> Any:
    """``value`` as the type ``hint`` names: int, float (a whole number is taken), str, bool,
    ``X | None``, ``tuple[X, ...]`` (from a list), list, dict or Any; else WrongType.

    bool is never taken for a number (in Python it is an int): ``k = true`` is a mistake.
    """
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        options = get_args(hint)
        if value is None and NoneType in options:
            return None
        for option in options:
            if option is not NoneType:
                try:
                    return checked(value, option)
                except WrongType:
                    pass
        raise WrongType(describe(hint))
    if hint is Any:
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise WrongType(describe(tuple))
        item = get_args(hint)[0]
        try:
            return tuple(checked(v, item) for v in value)
        except WrongType as exc:
            raise WrongType(exc.expected, in_items=True) from None
    expected = origin or hint
    if isinstance(value, bool) and expected is not bool:
        raise WrongType(describe(expected))
    if expected is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, expected):
        raise WrongType(describe(expected))
    return value
