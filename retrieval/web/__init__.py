"""URLs as sources: polite fetching, pages, feeds, sitemaps and PDFs by URL.

Nothing here is imported on the query path (``citebot ask``): ingest and sync load it
when a source is a URL. Telling URLs from paths is ``retrieval.urls`` (standard library
only), which the config and the CLI use too.
"""
