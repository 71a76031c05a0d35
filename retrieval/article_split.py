"""Several articles in one plain-text file: where one ends and the next begins.

An article ends after its sign-off lines (an author line, "Translated by ...") when it has
a body before them, or after a paragraph cut off mid-sentence (an excerpt's end).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .text import split_sentences

_CREDIT = re.compile(
    r"^(?:translated|reporting|additional reporting|edited|compiled|written) by\b", re.IGNORECASE
)
_HONORIFICS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sir",
    "president",
    "the",
    "this",
    "it",
    "he",
    "she",
}
# Strict on purpose, unlike the highlight's sign-off pattern (retrieval.highlight): a
# match here ends an article, and a wrong split cuts one in two.
_BYLINE = re.compile(r"^(?P<name>[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*){1,3}) (?:is|was) (?:an?|the) ")


def _has_words(text: str, count: int) -> bool:
    """Whether ``text`` has at least ``count`` words, without splitting all of a long text."""
    return len(text.split(maxsplit=count - 1)) >= count


def is_sign_off(paragraph: str) -> bool:
    """An author line ("Jane Doe is a professor at ...") or a credit ("Translated by ...")."""
    if _has_words(paragraph, 31) or len(split_sentences(paragraph)) > 1:
        return False
    if _CREDIT.match(paragraph):
        return True
    byline = _BYLINE.match(paragraph)
    return (
        byline is not None
        and byline.group("name").split()[0].lower().rstrip(".") not in _HONORIFICS
    )


def is_cut_off(paragraph: str) -> bool:
    """A long paragraph that stops mid-sentence (on a word or a comma): an excerpt's end."""
    end = paragraph.rstrip()[-1]
    return (end.isalnum() or end == ",") and _has_words(paragraph, 50)


def _starts_sentence(paragraph: str) -> bool:
    return paragraph.lstrip("\"'“‘(")[:1].isupper()


def split_articles(paragraphs: Sequence[str]) -> list[list[str]]:
    """Split one file's paragraphs into articles (see README, "Several articles in one file").

    An article ends after its sign-off lines (author line, "Translated by ...") when it
    has a body of at least two paragraphs before them, or after a paragraph cut off
    mid-sentence when the next paragraph starts a sentence (an excerpt, not a line break
    in the middle of a sentence).
    """
    # Each paragraph is looked at once: linear in the number of paragraphs.
    sign_off = [is_sign_off(p) for p in paragraphs]
    articles: list[list[str]] = []
    current: list[str] = []
    body = 0  # paragraphs of the current article that are not sign-off lines
    for index, paragraph in enumerate(paragraphs):
        current.append(paragraph)
        body += not sign_off[index]
        if index + 1 == len(paragraphs):
            break
        following = paragraphs[index + 1]
        ends_sign_off = sign_off[index] and not sign_off[index + 1] and body >= 2
        ends_excerpt = is_cut_off(paragraph) and _starts_sentence(following)
        if ends_sign_off or ends_excerpt:
            articles.append(current)
            current = []
            body = 0
    if current:
        articles.append(current)
    return articles
