"""The ONNX backends: an exported model run by ONNX Runtime, tokenized by `tokenizers`.

Neither torch, transformers nor sentence-transformers is imported here, so answering a
question from an index built with an ONNX backend starts in a fraction of a second. The
exported graph includes mean pooling and normalisation (see ``export.py``): a text goes
in as token ids and comes out as a unit vector, exactly as sentence-transformers embeds it.
The graph also gives the token states that vector was pooled from; at ingest, the vectors
of a chunk's sentences are pooled from them (``embed_with_spans``), from the same run.

Texts are embedded one at a time, each run on one core, as many at once as there are
cores. One text needs no padding at all, and its vector depends on nothing else: with
int8 activations quantized per run, a text embedded in a batch would get a scale set by
its batch mates, and a question would not get quite the vector its chunk got at ingest.
On this model, one-text runs on two threads beat padded batches on two cores by 1.5-2x
(bench/bench_ingest.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import CitebotError
from .base import Span, lowercased, pool_spans
from .model_files import MODEL_FILE, SENTENCE_OUTPUT, TOKEN_OUTPUT, TOKENIZER_FILE, OnnxModel

if TYPE_CHECKING:
    import onnxruntime
    import tokenizers

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


def cores() -> int:
    return len(os.sched_getaffinity(0))


def session_options() -> onnxruntime.SessionOptions:
    """Each run on the thread that calls it (several threads run at once); no busy-waiting
    thread pool, which on a small shared machine steals time from the runs themselves."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def lower_thread_priority(nice: int) -> None:
    """Add ``nice`` to the calling thread's niceness (Linux keeps one per thread; elsewhere
    nothing is changed, as it would be the whole process's). The embedding threads of a
    write run so: on a small machine a writer's embedding then takes the cores questions
    leave, instead of making them wait (bench/bench_live.py)."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(
            os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + nice)
        )
    except OSError as exc:  # not allowed here (a sandbox): the threads keep their priority
        logger.debug("embedding threads keep their priority: %s", exc)


class OnnxEmbedder:
    """An exported model run by ONNX Runtime. Thread-safe: a session and a tokenizer may be
    used by several threads at once, as long as nobody changes them, and nobody does.

    ``source`` gives the exported model when first needed: ``OnnxModel.read`` of an index's
    folder (cheap), or an export (seconds, with torch), so building an embedder costs nothing.
    ``workers``: texts embedded at once (default: one per core). ``nice``: added to the
    niceness of the threads that embed several texts at once (a write's chunks; see
    ``lower_thread_priority``); one text (a question) runs on the calling thread as it is.
    """

    def __init__(
        self,
        name: str,
        backend: str,
        source: Callable[[], OnnxModel],
        *,
        workers: int | None = None,
        nice: int = 0,
    ) -> None:
        self.name = name
        self.backend = backend
        self._source = source
        self.workers = workers or cores()
        self.nice = nice
        self._load_lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: Path, *, workers: int | None = None) -> OnnxEmbedder:
        model = OnnxModel.read(folder)
        return cls(model.model, model.backend, lambda: model, workers=workers)

    @cached_property
    def artifact(self) -> OnnxModel:
        with self._load_lock:
            model = self._source()
        if (model.model, model.backend) != (self.name, self.backend):
            raise CitebotError(
                f"the model in {model.folder} is {model.model} ({model.backend}),"
                f" not {self.name} ({self.backend})"
            )
        return model

    @property
    def dimension(self) -> int:
        return self.artifact.dimension

    @property
    def max_tokens(self) -> int:
        return self.artifact.max_tokens

    @cached_property
    def session(self) -> onnxruntime.InferenceSession:
        import onnxruntime as ort

        path = self.artifact.folder / MODEL_FILE
        logger.info("loading %s (%s) from %s", self.name, self.backend, path)
        try:
            return ort.InferenceSession(
                str(path), session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise CitebotError(f"cannot load the embedding model {path}: {exc}") from exc

    @cached_property
    def _tokenizer(self) -> tokenizers.Tokenizer:
        """Truncates at the model's limit, as sentence-transformers does; pads nothing."""
        tokenizer = self._read_tokenizer()
        tokenizer.enable_truncation(self.max_tokens)
        return tokenizer

    @cached_property
    def _counter(self) -> tokenizers.Tokenizer:
        """Counts every token: chunks are measured before embedding, so nothing is truncated."""
        tokenizer = self._read_tokenizer()
        tokenizer.no_truncation()
        return tokenizer

    def _read_tokenizer(self) -> tokenizers.Tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.artifact.folder / TOKENIZER_FILE))
        tokenizer.no_padding()
        return tokenizer

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        return [t.lower() for t in texts] if self.artifact.lowercase else list(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self._counter.encode_batch(self._prepare(texts), add_special_tokens=True)
        return [len(e.ids) for e in encoded]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session = self.session
        if len(texts) == 1:
            ids = self._tokenizer.encode(self._prepare(texts)[0]).ids
            return self._run(session, ids, [SENTENCE_OUTPUT])[0].reshape(1, -1)
        encoded = [e.ids for e in self._tokenizer.encode_batch(self._prepare(texts))]
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        runs = self._each(
            len(texts),
            lambda i: len(encoded[i]),
            lambda i: self._run(session, encoded[i], [SENTENCE_OUTPUT])[0],
        )
        for index, vector in runs:
            vectors[index] = vector
        return vectors

    @cached_property
    def gives_token_states(self) -> bool:
        """Whether the graph has the token states output (exports since recipe 3)."""
        return TOKEN_OUTPUT in {output.name for output in self.session.get_outputs()}

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[Span]]
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """``embed(texts)``, and the vectors of each text's ``spans`` pooled from the token
        states of the same run (``pool_spans``). None instead of the span vectors when the
        model's graph has no token states (an index exported before they were)."""
        if not self.gives_token_states:
            return self.embed(texts), None
        session = self.session
        if self.artifact.lowercase:
            pairs = [lowercased(text, own) for text, own in zip(texts, spans, strict=True)]
            texts, spans = [text for text, _ in pairs], [own for _, own in pairs]
        encoded = self._tokenizer.encode_batch(list(texts))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        pooled: list[np.ndarray] = [np.empty(0)] * len(texts)

        def run(i: int) -> tuple[np.ndarray, np.ndarray]:
            vector, states = self._run(session, encoded[i].ids, [SENTENCE_OUTPUT, TOKEN_OUTPUT])
            offsets = np.asarray(encoded[i].offsets, dtype=np.int64)
            return vector, pool_spans(states, offsets, spans[i])

        for index, (vector, parts) in self._each(len(texts), lambda i: len(encoded[i].ids), run):
            vectors[index] = vector
            pooled[index] = parts
        return vectors, pooled

    def _each(
        self, count: int, size: Callable[[int], int], work: Callable[[int], _T]
    ) -> Iterator[tuple[int, _T]]:
        """``work(i)`` for each text, one per core at a time: (i, result), longest first,
        so no long text is left running alone at the end."""
        order = sorted(range(count), key=lambda i: -size(i))
        return zip(order, self._pool.map(work, order), strict=True)

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            self.workers,
            thread_name_prefix="citebot-embed",
            initializer=lower_thread_priority,
            initargs=(self.nice,),
        )

    @staticmethod
    def _run(session: Any, ids: list[int], outputs: list[str]) -> list[np.ndarray]:
        """The ``outputs`` of one text's run: batch rows of one (float32)."""
        input_ids = np.asarray([ids], dtype=np.int64)
        attention_mask = np.ones_like(input_ids)
        found = session.run(outputs, {"input_ids": input_ids, "attention_mask": attention_mask})
        return [np.asarray(value[0], dtype=np.float32) for value in found]
