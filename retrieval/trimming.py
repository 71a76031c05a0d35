"""The view of a passage: the part of it shown around its highlight.

A passage can be longer than a reader wants to see at once; its view is the paragraph(s)
holding the highlight, or, when those are too long, the whole sentences around it that fit
a budget of characters. The search fills ``Passage.context_*`` from here; the bot trims
what it shows with the same windows.
"""

from __future__ import annotations

from .records import PARAGRAPH_SEPARATOR
from .text import sentence_spans


def sentence_window(
    text: str, start: int, end: int, budget: int, lo: int = 0, hi: int | None = None
) -> tuple[int, int]:
    """The widest run of whole sentences of ``text[lo:hi]`` around ``[start, end)`` within ``budget``.

    It grows by a sentence after, then before, while it fits. When even the sentences
    holding ``[start, end)`` do not fit, it is ``[start, end)`` itself.
    """
    hi = len(text) if hi is None else hi
    if hi - lo <= budget:
        return lo, hi
    bounds = sorted({lo, hi, *(lo + a for a, _ in sentence_spans(text[lo:hi]))})
    left = max(b for b in bounds if b <= start)
    right = min((b for b in bounds if b >= end), default=hi)
    if right - left > budget:
        return start, end
    grew = True
    while grew:
        grew = False
        after = next((b for b in bounds if b > right), None)
        if after is not None and after - left <= budget:
            right, grew = after, True
        before = next((b for b in reversed(bounds) if b < left), None)
        if before is not None and right - before <= budget:
            left, grew = before, True
    # Sentence starts are offsets after white space; the window ends at the text before it.
    while right > left and text[right - 1].isspace():
        right -= 1
    return left, right


def context_span(text: str, start: int, end: int, budget: int) -> tuple[int, int]:
    """The trimmed view of ``text`` around its highlight ``[start, end)``: the paragraph(s)
    holding it, or, when they are longer than ``budget``, the whole sentences around it that fit.
    """
    left = text.rfind(PARAGRAPH_SEPARATOR, 0, start)
    left = 0 if left < 0 else left + len(PARAGRAPH_SEPARATOR)
    right = text.find(PARAGRAPH_SEPARATOR, end)
    right = len(text) if right < 0 else right
    return sentence_window(text, start, end, budget, left, right)


def starts_paragraph(text: str, offset: int) -> bool:
    """Whether ``offset`` of ``text`` is where a paragraph starts."""
    return offset == 0 or text.startswith(PARAGRAPH_SEPARATOR, offset - len(PARAGRAPH_SEPARATOR))


def ends_paragraph(text: str, offset: int) -> bool:
    """Whether ``offset`` of ``text`` is where a paragraph ends."""
    return offset == len(text) or text.startswith(PARAGRAPH_SEPARATOR, offset)


def paragraph_at(text: str, offset: int) -> int:
    """1-based number of the paragraph of ``text`` holding ``offset``."""
    return text.count(PARAGRAPH_SEPARATOR, 0, max(0, offset)) + 1
