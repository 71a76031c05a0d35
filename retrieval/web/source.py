"""A URL as a source: an article page, an RSS/Atom feed, a sitemap (index), or a PDF.

Reading it fetches the URL, tells its kind from the content, and follows what it lists:
a feed's entries (their own full text when they carry it, else their link), a sitemap's
pages or sitemaps. Every fetch is conditional when the index remembers the URL, and a
listed page whose listing stamp (sitemap ``lastmod``, feed entry update) is unchanged is
not fetched at all: its indexed article is read back and found unchanged.

Deletion rule: a web source never counts as complete, so an article that merely dropped
out of a feed or a sitemap is kept; only a page answering 404 or 410 is reported gone
(removed by ``--prune``).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from html import escape
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import CitebotError, FetchError, LoadError
from ..index import ArticleReader, IndexWriter, backend_of
from ..loaders import article_from_html, title_from_name
from ..records import Article, Problem
from ..sources import SourceOutcome
from ..urls import is_web_url, normalize_url
from .content import Kind, decode_html, detect_kind, gunzip, is_gzip
from .feeds import FULL_TEXT_MIN_WORDS, FeedEntry, parse_feed
from .fetch import Fetched, Fetcher, Validators
from .prefetch import prefetch
from .sitemaps import parse_sitemap
from .state import Link, Resource, WebState, today

logger = logging.getLogger(__name__)

ANY: frozenset[Kind] = frozenset({"html", "feed", "sitemap", "pdf"})
ARTICLE_KINDS: frozenset[Kind] = frozenset({"html", "pdf"})
SITEMAP_KINDS: frozenset[Kind] = frozenset({"sitemap"})
# Articles fetched ahead of the reader.
READ_AHEAD = 32
# A web page with less text than this is not an article (trafilatura keeps a menu's few
# words when a page has nothing else).
MIN_PAGE_WORDS = 25
_KIND_NAMES = {"html": "an HTML page", "feed": "a feed", "sitemap": "a sitemap", "pdf": "a PDF"}


def article_id(url: str) -> str:
    """A web article's id: its URL in one spelling."""
    return normalize_url(url)


class WebSource:
    """One URL given to ingest (or listed in the config's ``sources``).

    ``fetcher`` is shared when several sources are read in one run, so that robots.txt and
    the per-host delay hold across them; without one, the source makes its own.
    """

    def __init__(self, url: str, settings: Settings, *, fetcher: Fetcher | None = None) -> None:
        if not is_web_url(url):
            raise CitebotError(f"{url}: only http and https URLs can be sources")
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise CitebotError(
                f"{parts.hostname}: URLs with a user name or password are not supported"
                " (they would be shown in citations)"
            )
        self.url = url
        self.settings = settings
        self._root = normalize_url(url)
        self._fetcher = fetcher
        self._outcome: SourceOutcome | None = None
        # What was fetched, committed with the articles by save_state.
        self._resources: tuple[Resource, ...] = ()
        self._failed: frozenset[str] = frozenset()
        # The generation ingest builds on, once it hands it over (use_committed).
        self._committed: ArticleReader | None = None
        self._handed = False

    @property
    def root(self) -> str:
        return self._root

    @property
    def outcome(self) -> SourceOutcome:
        if self._outcome is None:
            raise RuntimeError("read() the source to the end before asking for its outcome")
        return self._outcome

    def use_committed(self, committed: ArticleReader | None) -> None:
        self._committed = committed
        self._handed = True

    def _state(self) -> WebState:
        """What the index remembers: from the generation ingest handed over, else (a read
        outside ingest) from the index as it is now."""
        if self._handed:
            return WebState(self._committed)
        return WebState.open(self.settings.index_dir, backend_of(self.settings))

    def read(self) -> Iterator[Article | Problem]:
        """The articles and problems, fetched in a worker thread a few pages ahead of the
        caller, so fetching overlaps whatever the caller does with them (embedding)."""
        fetcher = self._fetcher or Fetcher(self.settings.web)
        crawl: _Crawl | None = None

        def crawl_all() -> Generator[Article | Problem, None, None]:
            nonlocal crawl
            with self._state() as state:
                crawl = _Crawl(self, fetcher, state)
                yield from crawl.visit(Link(self.url), ANY, root=True)

        try:
            yield from prefetch(crawl_all, READ_AHEAD)
        finally:
            if self._fetcher is None:
                fetcher.close()
        assert crawl is not None
        # Never complete: a page that is no longer in a feed or a sitemap was not deleted.
        self._outcome = SourceOutcome(
            failure=crawl.failure,
            complete=False,
            gone=frozenset(crawl.gone),
            documents=crawl.documents,
        )
        self._resources = tuple(crawl.resources)
        self._failed = frozenset(crawl.failed)

    def confirm_gone(self, article_ids: Sequence[str]) -> tuple[frozenset[str], list[Problem]]:
        """Of articles this read did not find (no longer listed), those whose page now
        answers 404 or 410: one conditional request each, at most once every
        ``[web] recheck_days`` per page."""
        gone: set[str] = set()
        problems: list[Problem] = []
        checked: list[Resource] = []
        pages = [i for i in article_ids if is_web_url(i) and "#" not in i]
        since = date.fromisoformat(today()) - timedelta(days=self.settings.web.recheck_days)
        fetcher = self._fetcher or Fetcher(self.settings.web)
        try:
            with self._state() as state:
                allow_private = fetcher.is_private(self.url)
                for url in pages:
                    prior = state.resource(url)
                    if prior and prior.checked and prior.checked > since.isoformat():
                        continue
                    validators = prior.validators if prior else Validators()
                    try:
                        fetched = fetcher.get(url, validators, allow_private=allow_private)
                    except FetchError as exc:
                        self._failed |= {url}
                        if exc.gone:
                            gone.add(url)
                        problems.append(Problem(url, exc.reason))
                        continue
                    # It is still there. New validators vouch for the indexed article only
                    # when the page is unchanged (304); a changed page is not re-read here.
                    if fetched.not_modified:
                        validators = fetched.validators
                    base = prior or Resource(url, "page", articles=(url,))
                    checked.append(replace(base, validators=validators, checked=today()))
        finally:
            if self._fetcher is None:
                fetcher.close()
        self._resources += tuple(checked)
        return frozenset(gone), problems

    def save_state(self, writer: IndexWriter) -> None:
        """Remember what was fetched (validators, lastmods, listings) with its articles;
        forget what could not be read."""
        writer.save_web_resources(resource.row() for resource in self._resources)
        writer.forget_web_resources(self._failed)


@dataclass
class _Crawl:
    """One read of a web source: what was seen, what failed, what to remember."""

    source: WebSource
    fetcher: Fetcher
    state: WebState
    failure: str | None = None
    gone: set[str] = field(default_factory=set)
    # URLs that could not be read this time.
    failed: set[str] = field(default_factory=set)
    documents: int = 0
    resources: list[Resource] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _pages: int = 0
    _capped: bool = False

    def __post_init__(self) -> None:
        # A source on a local or private address may list pages there too; a public one may not.
        self._allow_private = self.fetcher.is_private(self.source.url)

    def visit(
        self, link: Link, allowed: frozenset[Kind], *, root: bool = False
    ) -> Iterator[Article | Problem]:
        url = normalize_url(link.url)
        if url in self._seen:
            return
        self._seen.add(url)
        if allowed == ARTICLE_KINDS:
            if self._pages >= self.source.settings.web.max_urls:
                if not self._capped:
                    self._capped = True
                    yield Problem(
                        self.source.url,
                        f"lists more than {self.source.settings.web.max_urls:,} pages;"
                        " the rest were not read ([web] max_urls)",
                    )
                return
            self._pages += 1
        prior = self.state.resource(url)
        if prior is not None and link.lastmod and prior.lastmod == link.lastmod:
            # The listing says the page has not changed since it was indexed.
            yield from self._reuse(prior, link)
            return
        try:
            fetched = self.fetcher.get(
                link.url, prior.validators if prior else None, allow_private=self._allow_private
            )
        except FetchError as exc:
            yield from self._failed(link, exc, root=root)
            return
        if fetched.not_modified and prior is not None:
            # Remember the listing's new stamp too, so the next read need not ask.
            current = replace(
                prior, validators=fetched.validators, lastmod=link.lastmod, checked=today()
            )
            yield from self._reuse(current, link)
            return
        try:
            yield from self._read(link, fetched, allowed)
        except LoadError as exc:
            self.failed.add(url)
            if root:
                self.failure = str(exc)
            yield Problem(link.url, str(exc))

    # -- outcomes of one URL ------------------------------------------------------------

    def _failed(self, link: Link, exc: FetchError, *, root: bool) -> Iterator[Problem]:
        # Whatever was remembered of it is forgotten: the next read asks afresh, rather than
        # trusting a listing stamp or a validator for a page that may be gone.
        self.failed.add(normalize_url(link.url))
        page = article_id(link.url)
        if exc.gone and (not root or self.state.has_article(page)):
            # The page was deleted: its article goes on --prune.
            self.gone.add(page)
        elif root:
            self.failure = exc.reason
        yield Problem(link.url, exc.reason)

    def _reuse(self, resource: Resource, link: Link) -> Iterator[Article | Problem]:
        """What ``resource`` gave last time, read back from the index (with what the listing
        says of it now); its own listing visited again."""
        self.documents += 1
        self.resources.append(resource)
        for article in self.state.articles(resource.articles):
            yield _with_listing(article, link) if resource.kind == "page" else article
        yield from self._follow(resource.listing, resource.kind)

    def _follow(self, listing: tuple[Link, ...], kind: str) -> Iterator[Article | Problem]:
        # A sitemap index lists sitemaps; a feed or a sitemap lists pages.
        children = SITEMAP_KINDS if kind == "sitemapindex" else ARTICLE_KINDS
        for link in listing:
            yield from self.visit(link, children)

    def _read(
        self, link: Link, fetched: Fetched, allowed: frozenset[Kind]
    ) -> Iterator[Article | Problem]:
        body = fetched.body
        if is_gzip(body):  # a sitemap.xml.gz served as a file
            body = gunzip(body, self.source.settings.web.max_bytes)
        kind = detect_kind(fetched.content_type, body)
        if kind is None:
            described = fetched.content_type or "no content type"
            raise LoadError(f"not an article page, feed, sitemap or PDF ({described})")
        if kind not in allowed:
            expected = "a sitemap" if allowed == SITEMAP_KINDS else "an article page or a PDF"
            raise LoadError(f"{_KIND_NAMES[kind]} where {expected} was expected")
        self.documents += 1
        url = normalize_url(link.url)
        if kind in ARTICLE_KINDS:
            article = self._page(link, fetched, body, kind)
            resource = Resource(
                url, "page", fetched.validators, link.lastmod, (article.id,), checked=today()
            )
            self.resources.append(resource)
            yield article
        elif kind == "feed":
            yield from self._feed(link, fetched, body)
        else:
            sitemap = parse_sitemap(body, fetched.final_url)
            listing = tuple(Link(e.url, e.lastmod) for e in sitemap.entries)
            kind_name = "sitemapindex" if sitemap.is_index else "sitemap"
            resource = Resource(
                url, kind_name, fetched.validators, link.lastmod, (), listing, checked=today()
            )
            self.resources.append(resource)
            yield from self._follow(listing, kind_name)

    def _page(self, link: Link, fetched: Fetched, body: bytes, kind: Kind) -> Article:
        """The article of a page or a PDF, with the listing's title, date and author first."""
        page_id = article_id(link.url)
        if kind == "pdf":
            from ..pdf import pdf_article

            name = urlsplit(fetched.final_url).path.rstrip("/").rpartition("/")[2] or page_id
            article = pdf_article(
                body,
                article_id=page_id,
                source=link.url,
                fallback_title=title_from_name(name),
                url=fetched.final_url,
            )
        else:
            html = decode_html(body, fetched.charset)
            article = article_from_html(html, link.url, url=fetched.final_url)
            words = len(article.text.split())
            if words < MIN_PAGE_WORDS:
                plural = "" if words == 1 else "s"
                raise LoadError(
                    f"not an article: {words} word{plural} of text (a menu or index page?)"
                )
            # The page's canonical address, when it names one, is the one to cite.
            canonical = article.url if article.url and is_web_url(article.url) else None
            article = replace(
                article, id=page_id, source=link.url, url=canonical or fetched.final_url
            )
        return _with_listing(article, link)

    def _feed(self, link: Link, fetched: Fetched, body: bytes) -> Iterator[Article | Problem]:
        feed_url = normalize_url(link.url)
        feed = parse_feed(body, fetched.final_url, fetched.content_type)
        own: list[str] = []
        listing: list[Link] = []
        articles: list[Article | Problem] = []
        for number, entry in enumerate(feed.entries, start=1):
            where = entry.link or f"{link.url}#{number}"
            full = _entry_article(entry, f"{feed_url}#{entry.guid or number}")
            if isinstance(full, LoadError) and not entry.link:
                articles.append(Problem(where, f"entry with no link and no usable text: {full}"))
            elif isinstance(full, Article):
                own.append(full.id)
                articles.append(full)
            else:
                assert entry.link
                listing.append(Link(entry.link, entry.stamp, entry.title, entry.date, entry.author))
        self.resources.append(
            Resource(
                feed_url,
                "feed",
                fetched.validators,
                link.lastmod,
                tuple(own),
                tuple(listing),
                checked=today(),
            )
        )
        yield from articles
        yield from self._follow(tuple(listing), "feed")


def _with_listing(article: Article, link: Link) -> Article:
    """The article with the title, date and author its feed entry gives, where it gives them."""
    return replace(
        article,
        title=link.title or article.title,
        date=link.date or article.date,
        author=link.author or article.author,
    )


def _entry_article(entry: FeedEntry, fallback_id: str) -> Article | LoadError | None:
    """The entry's own article when it carries the full text; a LoadError when its text is
    unusable; None when it carries only a teaser (its link is read instead)."""
    if not entry.html:
        return LoadError("the entry has no text")
    title = escape(entry.title or "")
    document = (
        f"<html><head><title>{title}</title></head>"
        f"<body><article>{entry.html}</article></body></html>"
    )
    try:
        article = article_from_html(document, entry.link or fallback_id, url=entry.link)
    except LoadError as exc:
        return exc
    if entry.link and len(article.text.split()) < FULL_TEXT_MIN_WORDS:
        return None
    return replace(
        article,
        id=article_id(entry.link) if entry.link else fallback_id,
        source=entry.link or fallback_id,
        url=entry.link,
        title=entry.title or article.title,
        date=entry.date or article.date,
        author=entry.author or article.author,
    )
