"""URLs as sources: polite fetching, pages, feeds, sitemaps and PDFs by URL.

Nothing here is imported on the query path (``citebot ask``): ingest and sync load it
when a source is a URL. ``urls`` alone is light (standard library only).
"""
