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
from .compaction import Compaction, compact
from .generations import (
    GenerationLock,
    OpenIndex,
    committed_version,
    lock_for_writing,
    open_index,
)
from .manifest import MANIFEST, SCHEMA_VERSION, Manifest, check_model, read_manifest
from .steps import (
    BATCH_STEPS,
    BATCHED_FIRST_INGEST_STEPS,
    COMMIT_STEPS,
    COMPACTION_STEPS,
    FIRST_BATCH_STEPS,
    GENERATION_STEPS,
    KILL_AT_ENV,
    STAGING_STEPS,
    STORE_FILE,
    UPGRADE_STEPS,
    VECTORS_FILE,
    WRITE_STEPS,
)
from .vectors import APPROXIMATE, EXACT, VectorIndex, lists_for, probes_for
from .writer import GenerationWriter

__all__ = [
    "APPROXIMATE",
    "BATCHED_FIRST_INGEST_STEPS",
    "BATCH_STEPS",
    "COMMIT_STEPS",
    "COMPACTION_STEPS",
    "ENTRY_POINT_GROUP",
    "EXACT",
    "FIRST_BATCH_STEPS",
    "GENERATION_STEPS",
    "KILL_AT_ENV",
    "LOCAL",
    "MANIFEST",
    "SCHEMA_VERSION",
    "STAGING_STEPS",
    "STORE_FILE",
    "UPGRADE_STEPS",
    "VECTORS_FILE",
    "WRITE_STEPS",
    "ArticleReader",
    "ChunkRow",
    "Compaction",
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
    "committed_version",
    "compact",
    "index_backend",
    "lists_for",
    "lock_for_writing",
    "open_index",
    "probes_for",
    "read_manifest",
]
