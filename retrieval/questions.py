"""What a question's words are for: its content, its references to the text, its specifics.

People ask about opinion pieces as texts: "What did the author say about Kinmen?",
"According to the article, why ...?", "What is this piece about?". The words that point at
the article, its writer or its argument (*the author*, *this article*, *says*, *argues*,
*according to*) are not about the articles' content: a passage that answers the question
does not hold them, so they must not count against it (``content_terms``).

A question about an article as a whole ("What is this article about?", "Summarise the
piece on TSMC") wants the article's opening, not a matching sentence (``whole_article``).

A question's most specific words (names, numbers, words the index hardly knows) carry
what it is really about: "How much will the Philippines spend on defense?" shares its
topic with a passage on Taiwan's defence spending, but not its subject. ``specific_terms``
picks them out, so that an answer can say which of them its passages do not mention.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .records import ArticleRef
from .text import STOPWORDS, keyword_terms, sentence_spans, stem, words

# Nouns for the text itself or its writer, when a determiner points at one
# ("the author", "this piece", "the op-ed"): "the author of Hamlet" loses nothing by it
# either, since no passage says "author" of the author it names.
_TEXT_NOUNS = (
    r"article|articles|piece|pieces|op-?eds?|op\s+eds?|editorials?|columns?|essays?|"
    r"commentar(?:y|ies)|texts?|stor(?:y|ies)|authors?|writers?|columnists?|"
    r"opinion(?:\s+piece)?|blog(?:\s+post)?"
)
_TEXT_REFERENCE = re.compile(
    rf"\b(?:the|this|that|these|those|its|his|her|their|your|an?|same)\s+"
    rf"(?:(?:opinion|news|whole|entire|above|first|second|last|other)\s+)?(?:{_TEXT_NOUNS})\b"
    r"(?:['’]s)?",
    re.IGNORECASE,
)
# Verbs of saying and arguing, and "according to": what the text does, not what it is about.
_SPEECH = frozenset(
    """
    say says said saying argue argues argued arguing claim claims claimed claiming mention
    mentions mentioned mentioning according think thinks believe believes suggest suggests
    write writes wrote written discuss discusses discussed describe describes described
    explain explains explained conclude concludes concluded recommend recommends
    recommended propose proposes proposed assert asserts asserted contend contends opine
    """.split()
)
META_STEMS = frozenset(stem(w) for w in _SPEECH)

# A question about an article as a whole: its subject, its gist, its argument.
_WHOLE_ARTICLE = re.compile(
    r"\b(?:summari[sz]e|sum\s+up|summary|gist|tl;?\s*dr|overview|recap)\b"
    r"|\bwhat(?:['’]s|\s+is|\s+was|\s+are)\s+(?:the\s+)?main\s+(?:point|argument|idea|message|thesis|claim)s?\b"
    r"|\bwhat(?:['’]s|\s+is|\s+was|\s+are)\s+(?P<ref>.{0,80}?)\s+(?:all\s+)?about\s*[?.!]*\s*$"
    r"|\bwhat\s+(?:does|did)\s+(?P<ref2>.{0,80}?)\s+(?:argue|say|claim|conclude|propose)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
# Words that only frame a whole-article question: no topic in them.
_FRAMING = frozenset(
    """
    summarise summarize summarised summarized summary sum up gist tl dr tldr overview recap
    main point points argument arguments idea message thesis claim please give quick short
    brief tell explain describe
    """.split()
)


@dataclass(frozen=True)
class QuestionTerms:
    """A question's content words (stems) and those of its words that refer to the text."""

    content: frozenset[str]
    meta: frozenset[str]


def text_references(question: str) -> list[str]:
    """The phrases of ``question`` that point at an article or its writer ("the author")."""
    return [m.group() for m in _TEXT_REFERENCE.finditer(question)]


def without_text_references(question: str) -> str:
    """``question`` with the phrases that point at the text, and the verbs of saying,
    taken out: what is left is what it asks about the articles' content."""
    stripped = _TEXT_REFERENCE.sub(" ", question)
    kept = [w for w in re.split(r"(\s+)", stripped) if stem(_bare(w)) not in META_STEMS]
    return " ".join("".join(kept).split())


def _bare(token: str) -> str:
    found = words(token)
    return found[0].removesuffix("'s") if found else ""


def question_terms(question: str) -> QuestionTerms:
    """The stems of ``question``'s content words, split into those about the articles'
    content and those about the text itself (which no passage needs to hold)."""
    every = {stem(t) for t in keyword_terms(question)}
    content = {stem(t) for t in keyword_terms(without_text_references(question))}
    return QuestionTerms(frozenset(content), frozenset(every - content))


def content_terms(question: str) -> set[str]:
    """The stems of the words of ``question`` that a passage answering it should hold."""
    return set(question_terms(question).content)


# A clause that sets things aside ("Beyond defence and trade, where should ...?", "... at
# besides Kennedy Space Center?"): the answer is about something else, so the highlight
# neither looks for its words nor compares meaning with them. Opening the question, it
# runs to the comma. Inside it ("besides", "other than", "except": not "beyond", which is
# as often a place: "What lies beyond the belt?") it is a name or a number ("Which
# countries besides France signed?", "the only divisor besides 1 that ..."), or up to four
# words that end the question ("What else does it offer besides lessons?").
_SETS_ASIDE = r"besides|apart\s+from|aside\s+from|other\s+than|except(?:\s+for)?|excluding"
_NAME_RUN = r"(?:the\s+)?[A-Z0-9][\w'’.-]*(?:\s+(?:(?:of|the|and|de|von)\s+)*[A-Z0-9][\w'’.-]*)*"
_SET_ASIDE = re.compile(
    rf"^\s*(?i:beyond|in\s+addition\s+to|{_SETS_ASIDE})\s[^,?!;]+,"
    rf"|\b(?i:{_SETS_ASIDE})\s+(?:{_NAME_RUN}(?![\w'’])|[^\s,?!;]+(?:\s+[^\s,?!;]+){{0,3}}"
    r"(?=[?!.]*\s*$))"
)


def without_set_aside(question: str) -> str:
    """``question`` without the clauses that set things aside ("Beyond defence and trade,
    where ...?" becomes ", where ...?"): what its answer is about."""
    return re.sub(r"\s+(?=[?!.;])", "", " ".join(_SET_ASIDE.sub(" ", question).split()))


@dataclass(frozen=True)
class WholeArticleQuestion:
    """A question about one article as a whole, and the words that may name the article."""

    question: str
    # Content words left once the framing ("summarise", "the piece", "about") is gone:
    # they name the article by its title or topic; empty when the question names none.
    topic: tuple[str, ...]


def whole_article(question: str) -> WholeArticleQuestion | None:
    """The question as a question about an article as a whole, or None if it is not one.

    "What is this article about?", "Summarise the piece on TSMC", "What's the gist of the
    op-ed?", "What does the author argue?" are; "What does the author say about Kinmen?"
    and "What is Kinmen about?" (no text named) are not.
    """
    match = _WHOLE_ARTICLE.search(question)
    if match is None:
        return None
    ref = match.group("ref") or match.group("ref2")
    if ref is not None and not _TEXT_REFERENCE.search(ref) and not _bare_text_noun(ref):
        return None
    topic = [
        t
        for t in keyword_terms(without_text_references(question))
        if t not in _FRAMING and stem(t) not in META_STEMS
    ]
    return WholeArticleQuestion(question, tuple(topic))


def _bare_text_noun(ref: str) -> bool:
    """ "it" or a bare text noun ("What is it about?" in a thread, "what's article 2 about")."""
    ref = ref.strip().lower()
    return ref in ("it", "this", "that") or bool(re.match(rf"(?:{_TEXT_NOUNS})\b", ref))


# Question words and imperatives that open a question with a capital without naming
# anything, beside the stopwords.
_OPENERS = frozenset(
    """
    what who whom whose which when where why how name list give tell explain describe
    summarise summarize according does do did is are was were can could should would will
    in on at for from by of to as after before during since under beyond besides apart
    """.split()
)


# A capitalised word held by at most this share of the index's chunks is a name that says
# what the question is about; a more common one ("New", "British") says little. The default
# of ``[search] caveat_name_share``, calibrated on the near-topic set (docs/questions.md).
NAME_SHARE = 0.005
# ... and, in a small index, in at most this many chunks.
NAME_MIN_CHUNKS = 5


def specific_terms(
    question: str,
    chunk_counts: Callable[[list[str]], Mapping[str, int]],
    chunks: int,
    name_share: float = NAME_SHARE,
) -> list[str]:
    """The words of ``question`` that say what exactly it is about, as written, in order:
    numbers of two digits or more (not ordinals or decades: "10th", "80s"), and names:
    capitalised words past the first that the index holds in at most ``name_share`` of its
    ``chunks`` (or ``NAME_MIN_CHUNKS``; ``chunk_counts`` says how many chunks hold each
    word). Never a stopword or a word about the text.

    Rare lower-case words are not taken: on the dev questions they are mostly the
    question's own wording ("broaden", "forbidden") or typos, and taking them tripled the
    answerable questions given a caveat (see docs/questions.md).
    """
    stripped = without_text_references(question)
    tokens = [
        (token, _plain(token))
        for token in _TOKEN.findall(stripped)
        if _plain(token) not in STOPWORDS
        and _plain(token) not in _OPENERS
        and stem(_plain(token)) not in META_STEMS
    ]
    opening = _TOKEN.match(stripped.lstrip(" \"'“‘("))
    names = [
        word
        for token, word in tokens
        if token[0].isupper() and not (opening is not None and opening.group() == token)
    ]
    # A share of 0 takes no names at all (config: caveats on names off).
    counts = chunk_counts(names) if names and name_share > 0 else {}
    common = max(NAME_MIN_CHUNKS, name_share * chunks)
    found: dict[str, None] = {}
    for token, word in tokens:
        if any(c.isdigit() for c in token):
            if _NUMBER.fullmatch(token):
                found.setdefault(token, None)
        elif word in counts and counts[word] <= common:
            found.setdefault(token, None)
    return list(found)


def _plain(token: str) -> str:
    return token.lower().replace("’", "'").removesuffix("'s")


_TOKEN = re.compile(r"\d+(?:[.,]\d+)*(?![^\W_]|['’])|[^\W_]+(?:['’][^\W_]+)*")
# A number that names something: two digits or more, with its separators ("1,000", "3.5").
_NUMBER = re.compile(r"\d[\d,.]*\d")


def _folded(text: str) -> str:
    """Lower case without diacritics: "Maizière" is "maiziere"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def missing_terms(specific: Iterable[str], texts: Iterable[str]) -> list[str]:
    """Those of ``specific`` (words as written) that none of ``texts`` holds: by stem,
    without diacritics, and a word written as one ("Superbowl") found as two."""
    held: set[str] = set()
    for text in texts:
        found = words(_folded(text))
        held.update(stem(w) for w in found)
        held.update(stem(a + b) for a, b in itertools.pairwise(found))
    return [t for t in specific if not all(stem(w) in held for w in words(_folded(t)))]


def word_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def near_topic_caveat(question: str, specific: Sequence[str], texts: Sequence[str]) -> str | None:
    """The sentence shown above passages whose articles (``texts``) do not mention some of
    ``specific`` (specific words of ``question``): what they mention of the question, and
    what not; None when they mention them all."""
    missing = missing_terms(specific, texts)
    if not missing:
        return None
    held = {stem(w) for text in texts for w in words(text)}
    absent = {stem(w) for term in missing for w in words(term)}
    as_written = {_plain(t): _POSSESSIVE.sub("", t) for t in reversed(_TOKEN.findall(question))}
    mentioned = [
        as_written.get(t, t)
        for t in keyword_terms(without_text_references(question))
        if stem(t) in held and stem(t) not in absent and t not in _OPENERS
    ][:MENTIONED_SHOWN]
    quoted = [f"“{_POSSESSIVE.sub('', t)}”" for t in missing]
    if not mentioned:
        return f"The articles found do not mention {word_list(quoted)}."
    return (
        f"The articles mention {word_list([f'“{t}”' for t in mentioned])},"
        f" but not {word_list(quoted)}."
    )


_POSSESSIVE = re.compile(r"['’]s$")
# Words of the question a caveat names as mentioned, at most.
MENTIONED_SHOWN = 4


def lead_span(text: str, first_paragraph_end: int) -> tuple[int, int]:
    """The highlight of an article's lead: its first sentences, up to ``LEAD_SENTENCES``,
    within the first paragraph (which ends at ``first_paragraph_end`` of ``text``)."""
    spans = [s for s in sentence_spans(text[:first_paragraph_end])][:LEAD_SENTENCES]
    if not spans:
        return 0, first_paragraph_end
    return spans[0][0], spans[-1][1]


# Sentences of an article's opening highlighted for a question about the whole article.
LEAD_SENTENCES = 2


def pick_article(
    about: WholeArticleQuestion, candidates: Sequence[ArticleRef], on_page: Sequence[ArticleRef]
) -> ArticleRef | None:
    """The one article of ``candidates`` (best first) that a question about an article as a
    whole points at, or None when it could mean several: the only candidate; else the only
    one whose title holds every topic word; else, when the question names a topic, the
    only article of the first page (``on_page``)."""
    if len(candidates) == 1:
        return candidates[0]
    if not about.topic:
        return None
    wanted = {stem(t) for t in about.topic}
    titled = [c for c in candidates if wanted <= {stem(w) for w in words(c.title)}]
    if len(titled) == 1:
        return titled[0]
    return on_page[0] if not titled and len(on_page) == 1 else None
