"""Links from a cited passage to the place it quotes on the web.

An HTML page gets a text fragment (https://wicg.github.io/scroll-to-text-fragment/):
``URL#:~:text=START,END`` makes a browser scroll to the quoted passage and highlight it.
A PDF gets ``#page=N``, which browsers' PDF viewers open at that page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .records import Article
from .urls import is_web_url

# Words in each of textStart and textEnd: enough to be unique on most pages, and grown
# (up to the most) until they are unique in the article.
FRAGMENT_WORDS = 4
FRAGMENT_MAX_WORDS = 10
# A passage of at most this many words is quoted whole, as textStart alone.
WHOLE_PASSAGE_WORDS = 10

_WORD = re.compile(r"\S+")


def encode_term(term: str) -> str:
    """A text directive term percent-encoded: everything but ASCII letters and digits.

    The spec requires ``-``, ``,`` and ``&`` to be encoded (they delimit the directive);
    encoding every other mark too (as Firefox does) keeps the URL valid everywhere.
    """
    return "".join(
        chr(byte) if chr(byte).isascii() and chr(byte).isalnum() else f"%{byte:02X}"
        for byte in term.encode("utf-8")
    )


def text_fragment(start: str, end: str | None = None) -> str:
    """``#:~:text=start[,end]``, each term encoded."""
    directive = encode_term(start) + (f",{encode_term(end)}" if end else "")
    return f"#:~:text={directive}"


def passage_link(
    article: Article, char_start: int, char_end: int, pages: tuple[int, int] | None = None
) -> str | None:
    """Where a passage of ``article`` (``text[char_start:char_end]``) is on the web, if it is."""
    if not article.url or not is_web_url(article.url):
        return None
    base = article.url.split("#", 1)[0]
    if pages:
        return f"{base}#page={pages[0]}"
    passage = article.text[char_start:char_end]
    paragraphs = [p for p in passage.split("\n\n") if p.strip()]
    if not paragraphs:
        return base
    words = _WORD.findall(passage)
    if len(paragraphs) == 1 and len(words) <= WHOLE_PASSAGE_WORDS:
        return base + text_fragment(" ".join(words))
    first = _WORD.findall(paragraphs[0])
    last = _WORD.findall(paragraphs[-1])
    # A browser highlights from the first match of the start term in the page, to the first
    # match of the end term after it: the start must not occur before the passage, and the
    # end must occur once in the passage after the start.
    before = article.text[:char_start]
    start = _fewest(first, from_start=True, unique=lambda t: _occurrences(before, t) == 0)
    after_start = passage[len(start) :]
    end = _fewest(last, from_start=False, unique=lambda t: _occurrences(after_start, t) == 1)
    if len(paragraphs) == 1 and len(start.split()) + len(end.split()) >= len(words):
        return base + text_fragment(" ".join(words))
    return base + text_fragment(start, end)


def _fewest(words: Sequence[str], *, from_start: bool, unique: Callable[[str], bool]) -> str:
    """The fewest of ``words`` (from the start, or from the end) that make a ``unique`` term."""
    term = ""
    for count in range(FRAGMENT_WORDS, FRAGMENT_MAX_WORDS + 1):
        chosen = words[:count] if from_start else words[-count:]
        term = " ".join(chosen)
        if len(chosen) == len(words) or unique(term):
            break
    return term


def _occurrences(text: str, term: str) -> int:
    # Browsers match whole words, case-insensitively, with white space collapsed.
    pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, term.split())) + r"(?!\w)"
    return len(re.findall(pattern, text, flags=re.IGNORECASE))
