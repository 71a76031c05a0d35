"""Sitemaps (https://www.sitemaps.org/protocol.html): the pages of a site, or its other sitemaps."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from ..errors import LoadError


@dataclass(frozen=True)
class SitemapEntry:
    url: str
    # The page's last modification as the sitemap gives it (W3C datetime), if it does.
    lastmod: str | None = None


@dataclass(frozen=True)
class Sitemap:
    # True for a sitemap index: its entries are sitemaps, not pages.
    is_index: bool
    entries: list[SitemapEntry]


def parse_sitemap(body: bytes, url: str) -> Sitemap:
    """The entries of a ``<urlset>`` or a ``<sitemapindex>``, in order, without duplicates."""
    from lxml import etree

    # No entities, no network, no huge trees: a sitemap comes from someone else's server.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise LoadError(f"not a readable sitemap: {exc}") from None
    if root is None:
        raise LoadError("not a readable sitemap: no XML element")
    kind = etree.QName(root).localname
    if kind not in ("urlset", "sitemapindex"):
        raise LoadError(f"not a sitemap (its root element is <{kind}>)")
    item = "sitemap" if kind == "sitemapindex" else "url"
    entries: dict[str, SitemapEntry] = {}
    for element in root:
        if not isinstance(element.tag, str) or etree.QName(element).localname != item:
            continue
        fields = {
            etree.QName(child).localname: (child.text or "").strip()
            for child in element
            if isinstance(child.tag, str)
        }
        if loc := fields.get("loc"):
            try:
                absolute = urljoin(url, loc)
            except ValueError:  # reported when it is visited: one bad <loc> costs only itself
                absolute = loc
            entries.setdefault(absolute, SitemapEntry(absolute, fields.get("lastmod") or None))
    return Sitemap(kind == "sitemapindex", list(entries.values()))
