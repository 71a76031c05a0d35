"""A small news site for the web source tests: articles, feeds, sitemaps, a PDF, and faults.

``FAULTS`` lists every broken thing the site serves, with the reason ingest must report.
"""

from __future__ import annotations

from tests.helpers import make_pdf
from tests.web import samples
from tests.web.server import LocalSite, Route

TOPICS = ["night bus", "harbour ferry", "bakery", "skatepark", "orchestra", "library"]

# path -> the reason a read of it reports (the URL is the site's own).
FAULTS = {
    "/missing": "HTTP 404 Not Found",
    "/gone": "HTTP 410 Gone",
    "/broken": "HTTP 500 Internal Server Error",
    "/slow": "timed out after 0.5s",
    "/private/memo": "disallowed by robots.txt",
    "/loop": "more than 5 redirects",
    "/logo.png": "not an article page, feed, sitemap or PDF (image/png)",
    "/menu": "no article text found in the HTML (only links, such as a menu)",
    "/stub": "not an article: 3 words of text (a menu or index page?)",
}


def article_path(number: int) -> str:
    return f"/news/{number}"


def serve(site: LocalSite, articles: int = len(TOPICS)) -> None:
    """Put the whole site in ``site.routes``."""
    routes = site.routes
    routes["/robots.txt"] = Route(b"User-agent: *\nDisallow: /private/\n", "text/plain")
    for number in range(1, articles + 1):
        topic = TOPICS[(number - 1) % len(TOPICS)]
        html = samples.page(
            f"News {number}: the {topic}",
            samples.article_text(f"{topic} {number}"),
            author="Desk Writer",
            date="2024-02-0" + str(1 + number % 9),
        )
        routes[article_path(number)] = Route(html.encode(), etag=f'"a{number}"')
    # Labelled UTF-8, written in Windows-1252: read right all the same.
    cp1252 = samples.page("Café culture", samples.article_text("café’s “new” terrace"))
    routes["/cafe"] = Route(cp1252.encode("cp1252"), "text/html; charset=utf-8")
    routes["/compressed"] = Route(
        samples.page("Compressed", samples.article_text("compressed page")).encode(), gzip=True
    )
    routes["/report.pdf"] = Route(
        make_pdf(
            [
                ["The harbour report finds the ferry late on most winter mornings this year."],
                ["It recommends a second boat for the morning crossing from next spring."],
            ],
            title="Harbour report",
        ),
        "application/octet-stream",
        last_modified="Tue, 05 Mar 2024 10:00:00 GMT",
    )
    routes["/old-address"] = Route(status=301, location=article_path(1))
    # Faults.
    routes["/gone"] = Route(b"gone", "text/plain", status=410)
    routes["/broken"] = Route(b"oops", "text/plain", status=500)
    routes["/slow"] = Route(b"<html><p>late</p></html>", delay=2.0)
    routes["/private/memo"] = Route(samples.page("Memo", samples.article_text("memo")).encode())
    routes["/loop"] = Route(status=302, location="/loop")
    routes["/logo.png"] = Route(b"\x89PNG\r\n\x1a\n", "image/png")
    routes["/menu"] = Route(b"<html><body><nav><a href='/'>Home</a></nav></body></html>")
    routes["/stub"] = Route(
        b"<html><body><article><p>Subscribe to read.</p></article></body></html>"
    )


def sitemap_of(site: LocalSite, paths: list[str], lastmod: str | None = "2024-03-01") -> bytes:
    return samples.urlset([(site.url(p), lastmod) for p in paths])
