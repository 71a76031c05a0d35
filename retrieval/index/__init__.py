"""Storage: an index of articles, chunks and their vectors, behind reader and writer
protocols (``base``), with backends chosen by name (``backends``).

The ``local`` backend keeps an index as a folder of crash-safe generations: a manifest
(``manifest``), a SQLite store with a BM25 keyword index (``store``, ``keywords``) and a
FAISS vector index (``vectors``), written and opened by ``generations``.
"""

from __future__ import annotations

from .backends import ENTRY_POINT_GROUP, LOCAL, LocalBackend, backend_of, index_backend
from .base import (
    ArticleReader,
    ChunkRow,
    IndexBackend,
    IndexedArticle,
    IndexReader,
    IndexWriter,
    SentenceVectors,
    WebResourceRow,
    WriteLock,
)
from .generations import (
    COMMIT_STEPS,
    KILL_AT_ENV,
    STORE_FILE,
    VECTORS_FILE,
    GenerationLock,
    GenerationWriter,
    OpenIndex,
    check_model,
    lock_for_writing,
    open_index,
)
from .manifest import MANIFEST, SCHEMA_VERSION, Manifest, read_manifest
from .vectors import APPROXIMATE, EXACT, VectorIndex, lists_for, probes_for

__all__ = [
    "APPROXIMATE",
    "COMMIT_STEPS",
    "ENTRY_POINT_GROUP",
    "EXACT",
    "KILL_AT_ENV",
    "LOCAL",
    "MANIFEST",
    "SCHEMA_VERSION",
    "STORE_FILE",
    "VECTORS_FILE",
    "ArticleReader",
    "ChunkRow",
    "GenerationLock",
    "GenerationWriter",
    "IndexBackend",
    "IndexReader",
    "IndexWriter",
    "IndexedArticle",
    "LocalBackend",
    "Manifest",
    "OpenIndex",
    "SentenceVectors",
    "VectorIndex",
    "WebResourceRow",
    "WriteLock",
    "backend_of",
    "check_model",
    "index_backend",
    "lists_for",
    "lock_for_writing",
    "open_index",
    "probes_for",
    "read_manifest",
]
