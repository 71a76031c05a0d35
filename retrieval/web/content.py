"""What a response holds (a page, a feed, a sitemap, a PDF), and its text decoded right.

The kind is read from the content first (a PDF's signature, an XML document's root
element) and from the declared Content-Type only when the content does not say: servers
often send feeds as text/html or PDFs as application/octet-stream.
"""

from __future__ import annotations

import codecs
import re
import zlib
from typing import Literal

from ..errors import LoadError

Kind = Literal["html", "feed", "sitemap", "pdf"]

FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_FEED_ROOTS = frozenset({"rss", "feed", "rdf"})
_SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})
# Skipped before a document's first element: white space, <?xml ...?>, comments, a doctype.
_PROLOGUE = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)*", re.DOTALL | re.IGNORECASE)
_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
# WHATWG: pages labelled Latin-1 or ASCII are decoded as Windows-1252 by every browser.
_AS_WINDOWS_1252 = frozenset({"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "l1"})


def root_element(body: bytes) -> str | None:
    """The local name of the first element (``rss``, ``feed``, ``html``...), lower case."""
    head = body[:4096].removeprefix(codecs.BOM_UTF8)
    prologue = _PROLOGUE.match(head)  # it matches empty text too: never None in fact
    match = _ROOT.match(head, prologue.end() if prologue else 0)
    return match.group(1).decode("ascii").rpartition(":")[2].lower() if match else None


def detect_kind(content_type: str, body: bytes) -> Kind | None:
    """What the response is, from its content, else its Content-Type; None for anything else."""
    if body.lstrip()[:5] == b"%PDF-":
        return "pdf"
    root = root_element(body)
    if root in _FEED_ROOTS:
        return "feed"
    if root in _SITEMAP_ROOTS:
        return "sitemap"
    if root == "html":
        return "html"
    if content_type == "application/pdf":
        return "pdf"
    if content_type in FEED_TYPES:
        return "feed"
    head = body[:4096].lower()
    if content_type in HTML_TYPES or b"<html" in head or b"<!doctype html" in head:
        return "html"
    return None


def gunzip(body: bytes, limit: int) -> bytes:
    """A gzip file's content (a ``sitemap.xml.gz`` served as is), at most ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise LoadError(f"bad gzip data: {exc}") from None
    if len(data) > limit:
        raise LoadError(f"larger than the {limit:,}-byte limit once decompressed ([web] max_bytes)")
    return data


def is_gzip(body: bytes) -> bool:
    return body[:2] == b"\x1f\x8b"


def decode_html(body: bytes, declared: str | None) -> str:
    """The page's text, even when its declared encoding is wrong.

    Valid UTF-8 is taken as UTF-8 whatever the label says (text in another encoding is
    almost never valid UTF-8, while pages labelled Latin-1 often are UTF-8); a page
    labelled UTF-8 (or not labelled) that is mostly UTF-8 stays UTF-8, its stray bytes
    replaced; otherwise the declared charset (the header's, then the page's ``<meta>``),
    else Windows-1252.
    """
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16")):
        if body.startswith(bom) or (encoding == "utf-16" and body.startswith(codecs.BOM_UTF16_BE)):
            return body.decode(encoding, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    meta = _META_CHARSET.search(body[:4096])
    labels = (declared, meta.group(1).decode("ascii") if meta else None)
    first = _codec(next((label for label in labels if _codec(label)), None))
    if first in (None, "utf-8") and _mostly_utf8(body):
        # UTF-8 with a stray byte: re-reading it as another encoding would garble every
        # accented letter, not just the bad byte.
        return body.decode("utf-8", errors="replace")
    for label in labels:
        codec = _codec(label)
        if codec and codec != "utf-8":
            try:
                return body.decode(codec)
            except UnicodeDecodeError:
                continue
    return body.decode("cp1252", errors="replace")


_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def _mostly_utf8(body: bytes) -> bool:
    """More of its non-ASCII bytes form UTF-8 sequences than not."""
    valid = _UTF8_SEQUENCE.findall(body)
    in_sequences = sum(len(v) for v in valid)
    stray = len(_HIGH_BYTE.findall(body)) - in_sequences
    return bool(valid) and in_sequences > stray


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    if label.strip().lower() in _AS_WINDOWS_1252:
        return "cp1252"
    try:
        return codecs.lookup(label.strip()).name
    except LookupError:
        return None


# Bidi controls (embeddings, overrides, isolates, marks), zero-width characters and the
# BOM: invisible in a title, they can reorder or hide what a reader sees around them.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def clean_title(title: str) -> str:
    """A title without invisible formatting characters, its white space made single."""
    return " ".join(_INVISIBLE.sub("", title).split())
