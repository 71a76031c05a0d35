"""A URL as a source: an article page, an RSS/Atom feed, a sitemap (index), or a PDF.

Reading it fetches the URL, tells its kind from the content, and follows what it lists:
a feed's entries (their own full text when they carry it, else their link), a sitemap's
pages or sitemaps. Every fetch is conditional when the index remembers the URL, and a
listed page whose listing stamp (sitemap ``lastmod``, feed entry update) is unchanged is
not fetched at all for ``[web] recheck_days``: its indexed article is read back and found
unchanged.

One bad URL costs only itself: whatever goes wrong while normalising, fetching or
parsing one URL is a problem reported for that URL, and the crawl goes on. The crawl
keeps an explicit stack (no recursion, whatever the nesting) and is bounded per source:
``max_urls`` articles (a feed's full-text entries included; entries past it are never
parsed), ``max_sitemaps`` sitemaps nested at most ``max_sitemap_depth`` deep,
``max_requests`` requests and ``max_source_seconds``. Pages, PDFs and feed entries are
parsed in the parsing workers, within the ``[ingest]`` limits, like files.

Deletion rule: a web source never counts as complete, so an article that merely dropped
out of a feed or a sitemap is kept; a page answering 404 or 410 is reported gone (removed
by ``--prune``, and not counted as a failure), even while it is still listed; so is the
page a URL served before it became a feed or a sitemap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from urllib.parse import urlsplit

from ..addresses import UrlPolicy
from ..config import Settings
from ..errors import CitebotError, FetchError, LoadError, unreadable
from ..index import ArticleReader, IndexWriter, backend_of
from ..loaders import Loaded
from ..records import Article, Problem
from ..sources import SourceOutcome
from ..text import printable
from ..urls import is_web_url, normalize_url
from ..workers import Document, parsing
from .content import Kind, clean_title, detect_kind, gunzip, is_gzip
from .documents import FeedEntryText, WebPage
from .feeds import parse_feed
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
# A listed URL longer than this is refused without a request (browsers stop near here).
MAX_URL_CHARS = 8192
_KIND_NAMES = {"html": "an HTML page", "feed": "a feed", "sitemap": "a sitemap", "pdf": "a PDF"}

Parse = Callable[[Document], Loaded | Problem]


def article_id(url: str) -> str:
    """A web article's id: its URL in one spelling."""
    return normalize_url(url)


class WebSource:
    """One URL given to ingest (or listed in the config's ``sources``).

    ``fetcher`` is shared when several sources are read in one run, so that robots.txt and
    the per-host delay hold across them; without one, the source makes its own.
    ``policy`` is where it may lead (``UrlPolicy(public_only=True)`` for a URL typed by a
    stranger); by default the fetcher's (the operator's rules, see ``Fetcher.source_policy``).
    """

    def __init__(
        self,
        url: str,
        settings: Settings,
        *,
        fetcher: Fetcher | None = None,
        policy: UrlPolicy | None = None,
    ) -> None:
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
        try:
            self._root = normalize_url(url)
        except ValueError:
            raise CitebotError(f"{printable(url)[:200]}: not a valid URL") from None
        self._fetcher = fetcher
        self._policy = policy
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
        fetcher = self._fetcher or Fetcher(self.settings.web, policy=self._policy)
        crawl: _Crawl | None = None

        def crawl_all() -> Generator[Article | Problem, None, None]:
            nonlocal crawl
            with self._state() as state, parsing(self.settings.ingest) as parse:
                crawl = _Crawl(self, fetcher, state, parse)
                yield from crawl.run()

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
        fetcher = self._fetcher or Fetcher(self.settings.web, policy=self._policy)
        try:
            with self._state() as state:
                try:
                    policy = fetcher.source_policy(self.url, self._policy)
                except FetchError as exc:
                    return frozenset(), [Problem(self.url, exc.reason)]
                for url in pages:
                    prior = state.resource(url)
                    if prior and prior.checked and prior.checked > since.isoformat():
                        continue
                    validators = prior.validators if prior else Validators()
                    try:
                        fetched = fetcher.get(url, validators, policy=policy)
                    except FetchError as exc:
                        self._failed |= {url}
                        if exc.gone:
                            gone.add(url)  # removed: reported as such, not as a failure
                        else:
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


@dataclass(frozen=True)
class _Visit:
    """A URL to read, what it may turn out to be, and how many sitemap indexes led to it."""

    link: Link
    allowed: frozenset[Kind]
    depth: int = 0
    root: bool = False


class _Crawl:
    """One read of a web source: what was seen, what failed, what to remember."""

    def __init__(self, source: WebSource, fetcher: Fetcher, state: WebState, parse: Parse):
        self.source = source
        self.fetcher = fetcher
        self.state = state
        self.parse = parse
        self.web = source.settings.web
        self.failure: str | None = None
        self.gone: set[str] = set()
        # URLs that could not be read this time.
        self.failed: set[str] = set()
        self.documents = 0
        self.resources: list[Resource] = []
        self._policy = fetcher.policy
        # URLs queued or read, and how many articles (pages listed, full-text entries)
        # and sitemaps this source has been given so far.
        self._seen: set[str] = set()
        self._articles = 0
        self._sitemaps = 0
        self._requests = 0
        self._started = time.monotonic()
        # Limits already reported (each once per source).
        self._reported: set[str] = set()
        since = date.fromisoformat(today()) - timedelta(days=self.web.recheck_days)
        self._recheck_before = since.isoformat()

    def run(self) -> Iterator[Article | Problem]:
        root = self.source.url
        try:
            self._policy = self.fetcher.source_policy(root, self.source._policy)
        except FetchError as exc:
            self.failed.add(self.source.root)
            self.failure = exc.reason
            yield Problem(root, exc.reason)
            return
        self._seen.add(self.source.root)
        stack = [_Visit(Link(root), ANY, root=True)]
        while stack:
            visit = stack.pop()
            if stopped := self._out_of_budget():
                yield from self._limit(stopped)
                break
            children: list[_Visit] = []
            try:
                yield from self._visit(visit, children)
            except Exception as exc:  # a bug or a library's error costs only this URL
                logger.debug("reading %s failed", visit.link.url, exc_info=True)
                reason = unreadable(exc)
                yield from self._fail(visit, reason)
            stack.extend(reversed(children))

    # -- limits ------------------------------------------------------------------------

    def _out_of_budget(self) -> str | None:
        if self._requests >= self.web.max_requests:
            return (
                f"needed more than {self.web.max_requests:,} requests; the rest were not"
                " read ([web] max_requests)"
            )
        if time.monotonic() - self._started > self.web.max_source_seconds:
            return (
                f"took longer than {self.web.max_source_seconds:g}s; the rest were not read"
                " ([web] max_source_seconds)"
            )
        return None

    def _limit(self, reason: str) -> Iterator[Problem]:
        """One problem per limit reached: the rest is left for the next sync."""
        if reason not in self._reported:
            self._reported.add(reason)
            yield Problem(self.source.url, reason)

    def _take_article(self) -> bool:
        if self._articles >= self.web.max_urls:
            return False
        self._articles += 1
        return True

    def _cap_problem(self) -> Iterator[Problem]:
        yield from self._limit(
            f"lists more than {self.web.max_urls:,} pages; the rest were not read ([web] max_urls)"
        )

    # -- one URL -----------------------------------------------------------------------

    def _visit(self, visit: _Visit, children: list[_Visit]) -> Iterator[Article | Problem]:
        link = visit.link
        if invalid := _invalid(link.url):
            yield from self._fail(visit, invalid)
            return
        url = normalize_url(link.url)
        if visit.allowed == SITEMAP_KINDS:
            if self._sitemaps >= self.web.max_sitemaps:
                yield from self._limit(
                    f"lists more than {self.web.max_sitemaps:,} sitemaps; the rest were not read"
                    " ([web] max_sitemaps)"
                )
                return
            self._sitemaps += 1
        prior = self.state.resource(url)
        if (
            prior is not None
            and link.lastmod
            and prior.lastmod == link.lastmod
            and (prior.checked or "") > self._recheck_before
        ):
            # The listing says the page has not changed since it was indexed, and it was
            # seen answering recently enough.
            yield from self._reuse(prior, link, visit, children)
            return
        self._requests += 1
        try:
            fetched = self.fetcher.get(
                link.url, prior.validators if prior else None, policy=self._policy
            )
        except FetchError as exc:
            yield from self._fetch_failed(visit, exc)
            return
        if fetched.not_modified and prior is not None:
            # Remember the listing's new stamp too, so the next read need not ask.
            current = replace(
                prior, validators=fetched.validators, lastmod=link.lastmod, checked=today()
            )
            yield from self._reuse(current, link, visit, children)
            return
        try:
            yield from self._read(visit, fetched, children)
        except LoadError as exc:
            yield from self._fail(visit, str(exc))

    def _fail(self, visit: _Visit, reason: str) -> Iterator[Problem]:
        # Whatever was remembered of it is forgotten: the next read asks afresh, rather than
        # trusting a listing stamp or a validator for a page that may be gone.
        with_key = _key(visit.link.url)
        self.failed.add(with_key)
        if visit.root:
            self.failure = reason
        yield Problem(_shown(visit.link.url), reason)

    def _fetch_failed(self, visit: _Visit, exc: FetchError) -> Iterator[Problem]:
        page = article_id(visit.link.url)
        if exc.gone and self.state.has_article(page):
            # The page was deleted: its article goes on --prune, reported as removed.
            self.failed.add(page)
            self.gone.add(page)
            logger.info("%s is gone (%s)", visit.link.url, exc.reason)
            return
        if exc.gone and not visit.root:
            self.gone.add(page)
        yield from self._fail(visit, exc.reason)

    def _reuse(
        self, resource: Resource, link: Link, visit: _Visit, children: list[_Visit]
    ) -> Iterator[Article | Problem]:
        """What ``resource`` gave last time, read back from the index (with what the listing
        says of it now); its own listing visited again."""
        self.documents += 1
        own = resource.articles
        if resource.kind == "feed":
            room = max(0, self.web.max_urls - self._articles)
            if len(own) > room:
                yield from self._cap_problem()
            own = own[:room]
            self._articles += len(own)
        self.resources.append(replace(resource, articles=own))
        for article in self.state.articles(own):
            yield _with_listing(article, link) if resource.kind == "page" else article
        yield from self._follow(resource.listing, resource.kind, visit, children)

    def _follow(
        self, listing: tuple[Link, ...], kind: str, visit: _Visit, children: list[_Visit]
    ) -> Iterator[Problem]:
        """Queue what a feed or sitemap lists (a sitemap index lists sitemaps): each page
        counts against ``max_urls`` when it is listed, so none past it is ever read."""
        if kind == "sitemapindex":
            if visit.depth >= self.web.max_sitemap_depth:
                yield from self._limit(
                    f"nests sitemap indexes more than {self.web.max_sitemap_depth} deep; the"
                    " deeper ones were not read ([web] max_sitemap_depth)"
                )
                return
            allowed, depth = SITEMAP_KINDS, visit.depth + 1
        else:
            allowed, depth = ARTICLE_KINDS, visit.depth
        for link in listing:
            key = _key(link.url)
            if key in self._seen:
                continue
            if allowed == ARTICLE_KINDS and not self._take_article():
                yield from self._cap_problem()
                return
            self._seen.add(key)
            children.append(_Visit(link, allowed, depth))

    def _read(
        self, visit: _Visit, fetched: Fetched, children: list[_Visit]
    ) -> Iterator[Article | Problem]:
        link, allowed = visit.link, visit.allowed
        body = fetched.body
        if is_gzip(body):  # a sitemap.xml.gz served as a file
            body = gunzip(body, self.web.max_bytes)
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
            if visit.root and not self._take_article():
                yield from self._cap_problem()
                return
            page = WebPage(link.url, kind, body, fetched.charset, fetched.final_url, url)
            article = _with_listing(_one_article(self.parse(page)), link)
            resource = Resource(
                url, "page", fetched.validators, link.lastmod, (article.id,), checked=today()
            )
            self.resources.append(resource)
            yield article
            return
        if self.state.has_article(url):
            # The URL was a page and is now a feed or a sitemap: that page is gone.
            self.gone.add(url)
        if kind == "feed":
            yield from self._feed(visit, fetched, body, children)
            return
        sitemap = parse_sitemap(body, fetched.final_url)
        listing = tuple(Link(e.url, e.lastmod) for e in sitemap.entries)
        kind_name = "sitemapindex" if sitemap.is_index else "sitemap"
        resource = Resource(
            url, kind_name, fetched.validators, link.lastmod, (), listing, checked=today()
        )
        self.resources.append(resource)
        yield from self._follow(listing, kind_name, visit, children)

    def _feed(
        self, visit: _Visit, fetched: Fetched, body: bytes, children: list[_Visit]
    ) -> Iterator[Article | Problem]:
        link = visit.link
        feed_url = normalize_url(link.url)
        room = max(0, self.web.max_urls - self._articles)
        feed = parse_feed(body, fetched.final_url, fetched.content_type, max_entries=room)
        own: list[str] = []
        listing: list[Link] = []
        articles: list[Article | Problem] = []
        for number, entry in enumerate(feed.entries[:room], start=1):
            where = entry.link or f"{link.url}#{number}"
            fallback = f"{feed_url}#{entry.guid or number}"
            if not entry.html and not entry.link:
                articles.append(Problem(where, "entry with no link and no usable text"))
                continue
            loaded = (
                self.parse(FeedEntryText(where, entry, fallback, fetched.final_url))
                if entry.html
                else Loaded([])
            )
            if isinstance(loaded, Problem) and not entry.link:
                articles.append(
                    Problem(where, f"entry with no link and no usable text: {loaded.reason}")
                )
            elif isinstance(loaded, Loaded) and loaded.articles:
                self._articles += 1
                own.append(loaded.articles[0].id)
                articles.append(loaded.articles[0])
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
        if feed.cut or len(feed.entries) > room:
            yield from self._cap_problem()
        yield from self._follow(tuple(listing), "feed", visit, children)


def _one_article(loaded: Loaded | Problem) -> Article:
    if isinstance(loaded, Problem):
        raise LoadError(loaded.reason)
    return loaded.articles[0]


def _invalid(url: str) -> str | None:
    """Why a listed URL cannot be fetched as written, if it cannot."""
    if len(url) > MAX_URL_CHARS:
        return f"not a valid URL (longer than {MAX_URL_CHARS:,} characters)"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "not a valid URL (control characters)"
    try:
        normalize_url(url)
    except ValueError:
        return "not a valid URL (bad host or port)"
    return None


def _key(url: str) -> str:
    try:
        return normalize_url(url)
    except ValueError:
        return url


def _shown(url: str) -> str:
    """A URL as a problem names it: printable, one line, not too long."""
    text = "".join(c if c.isprintable() else "\ufffd" for c in printable(url))
    return text if len(text) <= 200 else text[:199] + "…"


def _with_listing(article: Article, link: Link) -> Article:
    """The article with the title, date and author its feed entry gives, where it gives them."""
    return replace(
        article,
        title=clean_title(link.title) if link.title else article.title,
        date=link.date or article.date,
        author=link.author or article.author,
    )
