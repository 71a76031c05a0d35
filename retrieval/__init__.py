"""citebot's retrieval library: ingest articles, then answer questions with cited passages.

No Discord code here; the bot package builds on this API::

    from retrieval import Searcher, load_settings
    searcher = Searcher.open(load_settings())
    answer = searcher.search("What did the council decide about the library?")
"""

from .config import Settings, load_settings
from .errors import CitebotError
from .records import Answer, Article, ArticleRef, ArticleSummary, IndexStats, Passage

__all__ = [
    "Answer",
    "Article",
    "ArticleRef",
    "ArticleSummary",
    "CitebotError",
    "IndexStats",
    "Passage",
    "Searcher",
    "Settings",
    "load_settings",
]


def __getattr__(name: str) -> object:
    # Searcher pulls in numpy and the index code; import it only when asked for.
    if name == "Searcher":
        from .search import Searcher

        return Searcher
    raise AttributeError(name)
