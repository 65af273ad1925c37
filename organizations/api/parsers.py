"""The API's JSON parser: DRF's, with a bound on nesting.

Python's decoder recurses once per level, so a body nested ~1,000 deep raised RecursionError (a 500), and
one a little shallower parsed but then broke whatever walked it next (rendering the answer, the error
handler). No real input of ours nests deeply (custom fields are a flat object, at most a small tree), so
anything past MAX_DEPTH is refused as a parse error: a 400 in the API's error shape, before any view runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


def nesting_depth(value) -> int:
    """Depth of a parsed JSON value (a scalar is 0, `[]` and `{}` are 1), walked without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:  # no need to walk the rest: it is refused anyway
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


class BoundedJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.") from None
        if nesting_depth(data) > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.")
        return data
