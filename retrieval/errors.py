"""Every error the retrieval library raises on purpose derives from CitebotError.

The CLI and the bot turn these into one-line user messages in one place each;
anything else that escapes is a bug and is logged with its traceback.
"""


class CitebotError(Exception):
    """Base class: the message is meant for the user, as is."""


class ConfigError(CitebotError):
    """The configuration file is missing, unreadable or has a bad value."""


class IndexNotFoundError(CitebotError):
    """There is no index at the given location."""


class IndexMismatchError(CitebotError):
    """The index was built with a different model, dimension or schema."""


class IndexDamagedError(CitebotError):
    """The index folder's files are unreadable or disagree with each other: rebuild it."""


class BadQuestionError(CitebotError):
    """The question is empty or too long."""


class BadFilterError(BadQuestionError):
    """A search filter is contradictory or matches no article."""


class ArticleNotFoundError(CitebotError):
    """No article matches the given id or title."""


class LoadError(CitebotError):
    """A source file could not be read or parsed."""


class PruneRefusedError(CitebotError):
    """Pruning would remove more of the index than the configured share allows."""


class FetchError(LoadError):
    """A URL could not be fetched, or its content was refused (robots.txt, size, type).

    ``status`` is the HTTP status when the server answered with an error, so callers can
    tell a page that is gone (404, 410) from one that failed for a while.
    """

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason
        self.status = status

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)


class UrlRefused(FetchError):
    """A URL that may not be fetched (SSRF rules: scheme, credentials, address, port).

    The reason is one line and never names an internal address or port.
    """

    def __init__(self, reason: str, url: str = "") -> None:
        super().__init__(url, reason)


def one_line(error: BaseException | str, limit: int = 200) -> str:
    """An error's message (or any text) on one line of at most ``limit`` characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unreadable(error: BaseException) -> str:
    """The reason shown for a document that an unexpected error stopped: what is wrong
    with it where that is known, else the error's kind and message on one line."""
    if isinstance(error, UnicodeError):
        # e.g. a character reference to a lone surrogate (&#55296;), which is no text.
        return "cannot be read: it holds characters that are not valid text"
    return f"cannot be read: {type(error).__name__}: {one_line(error)}"
