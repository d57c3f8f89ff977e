"""Index construction: corpus readers -> tokenizer -> shard writer -> suffix arrays -> manifest.

The build writes into ``<out>.partial`` and renames it to ``<out>`` only after the manifest,
the completion marker, is written; a half-built index never opens. ``progress.json`` in the
partial directory records every finished shard (tokens and suffix array written), so
``resume=True`` continues an interrupted build from the first unfinished shard.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import asdict
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import BuildError
from ..tokenization import Tokenizer, load_tokenizer, token_width_for
from . import staging, token_files
from .corpus import Document, find_corpus_files, iter_documents
from .format import (
    DEFAULT_NTD_THRESHOLD,
    DEFAULT_SAMPLE_STRIDE,
    MANIFEST_NAME,
    PROGRESS_NAME,
    Manifest,
    Placement,
    ShardInfo,
)
from .progress import Progress, Step
from .writing import (
    SORT_BYTES_PER_BYTE,
    BuildRunner,
    ShardSink,
    ShardWriter,
    Sidecars,
    encode_texts,
    finish_shard,
    init_worker,
)

log = logging.getLogger("anygram")

_INT32_SORT_LIMIT = 2**31 - 1
_BATCH_DOCS = 512


def default_shard_positions(token_width: int, memory_bytes: int | None = None) -> int:
    """Largest shard (token positions) whose suffix array sorts in 32-bit and in memory.

    The memory budget defaults to 60% of physical RAM; 32-bit sorting needs fewer than 2**31
    bytes per shard (1.07B u16 tokens), which keeps peak RAM at ~5 bytes per byte.
    """
    if memory_bytes is None:
        memory_bytes = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.6)
    by_memory = memory_bytes // (SORT_BYTES_PER_BYTE * token_width)
    return max(1, min(by_memory, _INT32_SORT_LIMIT // token_width))


# ----------------------------------------------------------------------------- tokenizing

def _batches(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
    it = iter(docs)
    while batch := list(islice(it, size)):
        yield batch


def _tokenized(docs: Iterable[Document], tokenizer: Tokenizer, width: int, workers: int,
               runner: BuildRunner | None = None) -> Iterator[tuple[Document, bytes]]:
    """Documents with their token bytes, in input order; tokenized by ``workers`` processes,
    or by the ``runner``'s."""
    dtype = f"<u{width}"
    if tokenizer.kind == "bytes":
        for doc in docs:  # UTF-8 bytes are the tokens: nothing to parallelize
            yield doc, doc.text.encode("utf-8")
        return
    batches = _batches(docs, _BATCH_DOCS)
    if runner is not None:
        batches, texts = _tee_texts(batches)
        for encoded, batch in zip(runner.encode(tokenizer, dtype, texts), batches):
            yield from zip(batch, encoded)
        return
    if workers <= 1:
        init_worker(tokenizer, dtype)
        for batch in batches:
            yield from zip(batch, encode_texts([d.text for d in batch]))
        return
    # spawn: forking a process that holds tokenizer thread pools can deadlock.
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=init_worker, initargs=(tokenizer, dtype)) as pool:
        pending: list[tuple[list[Document], Any]] = []
        for batch in batches:
            pending.append((batch, pool.apply_async(encode_texts, ([d.text for d in batch],))))
            if len(pending) >= 4 * workers:
                done_batch, res = pending.pop(0)
                yield from zip(done_batch, res.get())
        for done_batch, res in pending:
            yield from zip(done_batch, res.get())


def _tee_texts(batches: Iterator[list[Document]]
               ) -> tuple[Iterator[list[Document]], Iterator[list[str]]]:
    """The batches, and their texts: the runner reads ahead of the documents' consumer, so
    the batches it has read wait in a queue."""
    queue: deque[list[Document]] = deque()

    def texts() -> Iterator[list[str]]:
        for batch in batches:
            queue.append(batch)
            yield [d.text for d in batch]

    def docs() -> Iterator[list[Document]]:
        while queue:
            yield queue.popleft()

    return docs(), texts()


# ----------------------------------------------------------------------------- the build


def _in_background(fn: Callable[..., ShardInfo], *args: Any) -> Future[ShardInfo]:
    """``fn(*args)`` in a daemon thread, its outcome in the returned future."""
    future: Future[ShardInfo] = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to the thread waiting for the result
            future.set_exception(exc)

    threading.Thread(target=run, name="anygram-sort", daemon=True).start()
    return future


def _done(future: Future[ShardInfo], timeout: float) -> bool:
    try:
        future.exception(timeout)
    except futures.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        return False
    return True


def _load_progress(partial: Path, params: dict[str, Any]) -> tuple[list[ShardInfo], int]:
    path = partial / PROGRESS_NAME
    if not path.exists():
        return [], 0
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("params") != params:
        raise BuildError(f"{partial} holds an interrupted build with other inputs or options: "
                         "run without --resume to start over")
    return [ShardInfo(**s) for s in state["shards"]], int(state["docs_done"])


def _save_progress(partial: Path, params: dict[str, Any], shards: list[ShardInfo],
                   docs_done: int) -> None:
    tmp = partial / (PROGRESS_NAME + ".tmp")
    tmp.write_text(json.dumps({"params": params, "shards": [asdict(s) for s in shards],
                               "docs_done": docs_done}), encoding="utf-8")
    os.replace(tmp, partial / PROGRESS_NAME)


def build_index(inputs: str | Path | Sequence[str | Path], out_dir: str | Path, *,
                tokenizer: str | Path | Tokenizer = "bytes", shard_tokens: int | None = None,
                workers: int | None = None, text_field: str = "text",
                txt_mode: str = "file", metadata: bool = True, resume: bool = False,
                overwrite: bool = False, eos_id: int | None = None,
                progress: bool = True, sample_stride: int = DEFAULT_SAMPLE_STRIDE,
                ntd_threshold: int = DEFAULT_NTD_THRESHOLD,
                ray_address: str | None = None, placement: Placement = "shared"
                ) -> Manifest:
    """Build an index over text corpora.

    Args:
        inputs: files, directories or globs (.jsonl[.gz|.zst], .txt, .parquet, .arrow, and
            Hugging Face ``datasets`` ``save_to_disk`` folders); files in directories that
            are not corpus files are skipped (logged, and counted in the manifest's
            ``build["skipped_files"]``).
        out_dir: the index directory to create.
        tokenizer: ``"bytes"``, or a path to a ``tokenizer.json`` / ``.tiktoken`` / ``.model``.
        shard_tokens: token positions per shard (separators included); default: what fits
            in 60% of RAM and in a 32-bit suffix sort.
        workers: tokenizer processes (default: all cores).
        text_field: the JSON/Parquet field holding the text.
        txt_mode: ``"file"`` (one document per .txt file) or ``"line"`` (one per line).
        metadata: store each document's other fields, path and line number.
        resume: continue an interrupted build of the same inputs and options.
        overwrite: replace an existing index at ``out_dir``.
        eos_id: the id recorded as end-of-document (default: the tokenizer's).
        progress: show each phase (tokenizing, sorting, writing, verifying a shard) on
            stderr: progress bars on a terminal, a line as each starts and ends elsewhere.
        sample_stride: keep every this-many-th suffix of each shard in its search sample
            (:mod:`anygram.index.sample`: ~25 bytes a sample, in RAM when searching); 0
            writes none (it is then built on first use).
        ntd_threshold: keep in each shard's next-token table (:mod:`anygram.index.ntd_table`)
            the exact next-token counts of every prompt of 1 and of 2 tokens occurring at
            least this many times, so that their exact ``ntd`` reads no suffix array (0.39 B a
            token at the default 256 on 20M GPT-2 tokens of code, 0.58 B at 64; one pass over
            the suffix array); 0 writes none (it is then built on first use).
        ray_address: tokenize and sort on the Ray cluster at this address (``"auto"``: the
            one started on this machine; ``pip install 'anygram[ray]'``), with ``out_dir``
            and the tokenizer file at the same path on every node; the index is the same as
            a local build's (:mod:`anygram.index.ray_build`). ``workers`` is then unused.
        placement: with ``ray_address``, where the shards are kept: ``"shared"``, in
            ``out_dir`` as every node sees it (a shared filesystem); ``"label"``, on the
            local disks of the nodes labelled ``anygram-node=<name>``, round robin, each in
            a directory at ``out_dir``'s path there, the manifest naming each shard's node
            (serve it with :func:`anygram.cluster.open`; docs/cluster.md).

    Returns:
        The manifest of the finished index.
    """
    runner: BuildRunner | None = None
    if ray_address is not None:
        from .ray_build import RayBuild  # (imports Ray)
        runner = RayBuild(ray_address, placement)
    elif placement != "shared":
        raise BuildError(f"placement {placement!r} places shards on the nodes of a Ray "
                         "cluster: give its address too (--ray)")
    found = find_corpus_files([inputs] if isinstance(inputs, (str, Path)) else list(inputs))
    paths = found.files
    if found.skipped:
        names = ", ".join(p.name for p in found.skipped[:5])
        more = ", ..." if len(found.skipped) > 5 else ""
        log.info("skipped %d file(s) that are not corpus files: %s%s", len(found.skipped),
                 names, more)
    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path, dict)) else tokenizer
    width = token_width_for(tok.max_id)
    n_workers = workers or os.cpu_count() or 1
    params = {"inputs": [str(p) for p in paths], "tokenizer": tok.spec(),
              "text_field": text_field, "txt_mode": txt_mode, "metadata": metadata}

    def items(skip: int) -> Iterator[tuple[Document, bytes]]:
        def documents() -> Iterator[Document]:
            for p in paths:
                yield from iter_documents(p, text_field=text_field,
                                          txt_mode=txt_mode)  # type: ignore[arg-type]
        # Skip what finished shards already hold: re-reading is cheap, tokenizing is not.
        return _tokenized(islice(documents(), skip, None), tok, width, n_workers, runner)

    return _build(items, Path(out_dir), params=params, width=width, vocab_size=tok.max_id + 1,
                  eos_id=eos_id if eos_id is not None else tok.eos_id, tokenizer=tok,
                  shard_tokens=shard_tokens, metadata=metadata, resume=resume,
                  overwrite=overwrite, progress=progress,
                  sidecars=Sidecars(sample_stride, ntd_threshold),
                  build_info={"skipped_files": len(found.skipped)}, runner=runner)


def build_index_from_ids(docs: Iterable[Sequence[int] | np.ndarray] | np.ndarray,
                         out_dir: str | Path, *, vocab_size: int,
                         shard_tokens: int | None = None, eos_id: int | None = None,
                         split_at_eos: bool = False,
                         tokenizer: str | Path | Tokenizer | None = None,
                         overwrite: bool = False, progress: bool = False,
                         sample_stride: int = DEFAULT_SAMPLE_STRIDE,
                         ntd_threshold: int = DEFAULT_NTD_THRESHOLD) -> Manifest:
    """Build an index from documents that are already token ids (no metadata).

    ``docs`` is the documents, each a sequence of ids (a list of lists or of 1-d arrays, a
    2-d array of equal-length documents, an iterator of them). With ``split_at_eos=True`` it
    is instead one flat sequence of ids (a 1-d array, the ``np.memmap`` of a token file) in
    which ``eos_id`` ends each document: the documents are the runs between them (the ids
    after the last one form one more document; ``eos_id`` itself is not stored). A flat
    sequence without ``split_at_eos`` is refused, as its ids would each be a document.

    ``tokenizer`` (as in :func:`build_index`; its ids must be below ``vocab_size``) is
    recorded in the index, so that text queries work; ``eos_id`` then defaults to its own.
    The token width is the smallest of 1, 2, 4 bytes whose all-0xff separator id is at
    least ``vocab_size``. ``sample_stride`` and ``ntd_threshold`` as in :func:`build_index`.

    Raises:
        BuildError: a flat sequence without ``split_at_eos``, a document that is not a
            sequence of integer ids, an id outside ``0..vocab_size - 1``, ``split_at_eos``
            without ``eos_id``.
    """
    tok = _ids_tokenizer(tokenizer, vocab_size)
    if eos_id is None and tok is not None:
        eos_id = tok.eos_id
    if split_at_eos:
        if eos_id is None:
            raise BuildError("split_at_eos needs eos_id: the id that ends each document")
        flat = np.asarray(docs)
        if flat.ndim != 1 or (flat.size and flat.dtype.kind not in "iu"):
            raise BuildError(f"split_at_eos needs one flat sequence of integer ids, not an "
                             f"array of shape {flat.shape} and type {flat.dtype}")
        documents: Iterable[Sequence[int] | np.ndarray] = token_files.split_at_eos(
            flat, eos_id, vocab_size=vocab_size)
    else:
        documents = _checked_docs(docs)
    return _build_from_ids(documents, Path(out_dir), params={"from_ids": True},
                           vocab_size=vocab_size, eos_id=eos_id, tokenizer=tok,
                           shard_tokens=shard_tokens, resume=False, overwrite=overwrite,
                           progress=progress,
                           sidecars=Sidecars(sample_stride, ntd_threshold),
                           ranges_checked=split_at_eos)


def build_index_from_token_files(paths: str | Path | Sequence[str | Path],
                                 out_dir: str | Path, *, eos_id: int, vocab_size: int,
                                 dtype: str | None = None,
                                 tokenizer: str | Path | Tokenizer | None = None,
                                 shard_tokens: int | None = None, resume: bool = False,
                                 overwrite: bool = False, progress: bool = True,
                                 sample_stride: int = DEFAULT_SAMPLE_STRIDE,
                                 ntd_threshold: int = DEFAULT_NTD_THRESHOLD) -> Manifest:
    """Build an index from pre-tokenized files (nanoGPT ``train.bin``, Dolma/OLMo ``.npy``):
    flat arrays of ids in which ``eos_id`` ends each document (:mod:`anygram.index.token_files`).

    The same index as :func:`build_index_from_ids` of the files' concatenated ids with
    ``split_at_eos=True`` (a document never spans two files). ``dtype`` (``"u8"``,
    ``"u16"``, ``"u32"``) is the type of raw files (default: ``u16`` when ``vocab_size`` fits
    in 16 bits, else ``u32``); a ``.npy`` with a header has its own. ``tokenizer`` is
    recorded in the index (its ids must be below ``vocab_size``). ``resume`` continues an
    interrupted build of the same files and options; the rest as in :func:`build_index`.

    Raises:
        BuildError: a missing or malformed file, an id outside ``0..vocab_size - 1``.
    """
    files = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if not files:
        raise BuildError("no token files given")
    tok = _ids_tokenizer(tokenizer, vocab_size)
    documents = token_files.iter_token_documents(files, eos_id=eos_id, vocab_size=vocab_size,
                                                 dtype=dtype)
    params = {"inputs": [str(p) for p in files], "from_ids": True, "eos_id": eos_id,
              "dtype": dtype, "tokenizer": tok.spec() if tok is not None else None}
    return _build_from_ids(documents, Path(out_dir), params=params, vocab_size=vocab_size,
                           eos_id=eos_id, tokenizer=tok, shard_tokens=shard_tokens,
                           resume=resume, overwrite=overwrite, progress=progress,
                           sidecars=Sidecars(sample_stride, ntd_threshold),
                           ranges_checked=True)


def _ids_tokenizer(tokenizer: str | Path | Tokenizer | None,
                   vocab_size: int) -> Tokenizer | None:
    """The tokenizer to record in an index built from ids, checked against its vocabulary."""
    if tokenizer is None:
        return None
    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, (str, Path, dict)) else tokenizer
    if tok.max_id >= vocab_size:
        raise BuildError(f"the tokenizer makes ids up to {tok.max_id}, but vocab_size is "
                         f"{vocab_size}: pass vocab_size of at least {tok.max_id + 1}, or the "
                         "tokenizer the ids were made with")
    return tok


def _checked_docs(docs: Iterable[Sequence[int] | np.ndarray] | np.ndarray
                  ) -> Iterator[Sequence[int] | np.ndarray]:
    """``docs``, checked to be documents (sequences of ids) rather than one flat sequence:
    its first element is looked at before anything is written, every one while reading."""
    if isinstance(docs, np.ndarray) and docs.ndim == 1:
        raise BuildError(_FLAT_IDS)
    it = iter(docs)
    for first in it:
        _check_doc(first, 0)
        return chain([first], it)
    return iter(())


_FLAT_IDS = ("docs is one flat sequence of token ids, not a sequence of documents: its ids "
             "would each be a document. Pass split_at_eos=True (with eos_id) to cut it into "
             "documents at each end-of-document id, or a list of documents")


def _check_doc(ids: Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Document ``k`` as a 1-d array of integer ids (empty ones of any type are allowed)."""
    arr = np.asarray(ids)
    if arr.ndim == 0:
        raise BuildError(f"document {k} is a single value ({ids!r}); {_FLAT_IDS}")
    if arr.ndim != 1:
        raise BuildError(f"document {k} is an array of shape {arr.shape}, not a sequence of "
                         "token ids")
    if arr.size and arr.dtype.kind not in "iu":
        raise BuildError(f"document {k} holds {arr.dtype} values, not integer token ids")
    return arr


def _build_from_ids(docs: Iterable[Sequence[int] | np.ndarray], out: Path, *,
                    params: dict[str, Any], vocab_size: int, eos_id: int | None,
                    tokenizer: Tokenizer | None, shard_tokens: int | None, resume: bool,
                    overwrite: bool, progress: bool, sidecars: Sidecars,
                    ranges_checked: bool = False) -> Manifest:
    """An index of documents given as token ids: checked, then written by :func:`_build`.

    ``ranges_checked``: the ids are known to be in ``0..vocab_size - 1`` (a token file's
    are checked as it is scanned), so the documents are not checked one by one again."""
    width = token_width_for(vocab_size - 1)
    dtype = np.dtype(f"<u{width}")

    def items(skip: int) -> Iterator[tuple[Document | None, bytes]]:
        for k, ids in enumerate(islice(docs, skip, None), start=skip):
            if ranges_checked:
                yield None, np.asarray(ids, dtype=dtype).tobytes()
                continue
            arr = _check_doc(ids, k)
            if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
                bad = int(arr.max()) if arr.max() >= vocab_size else int(arr.min())
                raise BuildError(f"token id {bad} is outside 0..{vocab_size - 1}")
            yield None, arr.astype(dtype).tobytes()

    return _build(items, out, params=params, width=width, vocab_size=vocab_size,
                  eos_id=eos_id, tokenizer=tokenizer, shard_tokens=shard_tokens,
                  metadata=False, resume=resume, overwrite=overwrite, progress=progress,
                  sidecars=sidecars, first_phase="reading")


def _build(items: Callable[[int], Iterator[tuple[Document | None, bytes]]], out: Path, *,
           params: dict[str, Any], width: int, vocab_size: int, eos_id: int | None,
           tokenizer: Tokenizer | None, shard_tokens: int | None, metadata: bool,
           resume: bool, overwrite: bool, progress: bool, sidecars: Sidecars,
           first_phase: str = "tokenizing", build_info: dict[str, Any] | None = None,
           runner: BuildRunner | None = None) -> Manifest:
    """Write shards from ``items(skip)`` (documents with token bytes), sort, write manifest.

    ``first_phase`` names the phase that makes a shard's documents in the progress
    (``tokenizing``, or ``reading`` ids); ``build_info`` is added to the manifest's ``build``;
    ``runner``: where the sorts run (default: a thread of this process, one at a time).
    """
    started = time.time()
    out = Path(os.path.abspath(out))  # "." and ".." have no name to suffix
    if eos_id is not None and not 0 <= eos_id < vocab_size:
        raise BuildError(f"eos_id {eos_id} is not a token id of this vocabulary "
                         f"(0..{vocab_size - 1})")
    budget = shard_tokens if shard_tokens is not None else default_shard_positions(width)
    if budget < 1:
        raise BuildError(f"shard_tokens must be positive, not {budget}")
    sidecars.check()
    params = {**params, "shard_tokens": budget, "token_width": width}
    if runner is not None:
        params.update(runner.params)
    partial = staging.prepare(out, overwrite=overwrite, resume=resume)
    shards, docs_done = _load_progress(partial, params) if resume else ([], 0)
    staging.remove_leftovers(partial, {n for s in shards for n in s.files})
    if runner is not None:
        runner.prepare(partial, out, shards, overwrite=overwrite, resume=resume)

    reporter = Progress(progress)
    sort_s_per_byte: list[float] = []
    # The previous shard sorts in a background thread (ctypes releases the GIL) while the next
    # one is tokenized; only one sort runs at a time, which bounds peak memory. A daemon
    # thread: Ctrl-C stops the build at once (--resume redoes the unfinished shard). A runner
    # sorts several at once elsewhere. Shards are recorded in order, with the documents done
    # when each was submitted.
    pending: deque[tuple[Future[ShardInfo], int]] = deque()
    in_flight = runner.sorts_in_flight if runner is not None else 1

    def settle(keep: int) -> None:
        while len(pending) > keep:
            job, docs = pending[0]
            reporter.wait(lambda timeout, job=job: _done(job, timeout))  # type: ignore[misc]
            shards.append(job.result())
            pending.popleft()
            _save_progress(partial, params, shards, docs)

    def new_writer(name: str) -> ShardSink:
        if runner is not None:
            return runner.writer(partial, name, width, metadata, sidecars)
        return ShardWriter(partial, name, width, metadata, sidecars)

    writer: ShardSink | None = None
    tokenizing = ExitStack()  # the tokenizing phase of the shard being written
    step: Step = lambda n: None  # noqa: E731

    def submit(w: ShardSink) -> None:
        tokenizing.close()
        closed = w.close()
        settle(in_flight - 1)
        job = (runner.finish(closed) if runner is not None else
               _in_background(finish_shard, closed, reporter, sort_s_per_byte))
        pending.append((job, docs_done))

    try:
        with tokenizing:
            for doc, token_bytes in items(docs_done):
                n_pos = 1 + len(token_bytes) // width
                if writer is not None and writer.num_docs and writer.positions + n_pos > budget:
                    submit(writer)
                    writer = None
                if writer is None:
                    writer = new_writer(str(len(shards) + len(pending)))
                    step = tokenizing.enter_context(
                        reporter.phase(f"{first_phase} shard {writer.name}", total=None))
                writer.add(doc, token_bytes)
                docs_done += 1
                step(n_pos - 1)
            if writer is None and not shards and not pending:  # empty corpus: one empty shard
                writer = new_writer("0")
            if writer is not None:
                submit(writer)
            settle(0)
    except BaseException as exc:
        if pending and not isinstance(exc, KeyboardInterrupt):
            # their files are in the partial directory: let them finish
            futures.wait([job for job, _ in pending])
        if runner is not None:
            runner.close()
        raise

    tok_spec: dict[str, Any] | None = None
    tok_files: dict[str, bytes] = {}
    if tokenizer is not None:
        tok_spec = tokenizer.spec()
        tok_files = {f"tokenizer/{f.name}": f.read_bytes() for f in tokenizer.files()}
        if tok_files:
            tok_spec = {**tok_spec, "file": next(iter(tok_files))}
    staging.write_files(partial, tok_files)
    manifest = Manifest(
        token_width=width, vocab_size=vocab_size, eos_id=eos_id, tokenizer=tok_spec,
        shards=tuple(shards), has_metadata=metadata, created_by=f"anygram {__version__}",
        build={"inputs": params.get("inputs", []), "shard_tokens": budget,
               "seconds": round(time.time() - started, 3), **(build_info or {})})
    if runner is not None:  # the nodes' directories first: this one's is the user's
        try:
            runner.publish(out, manifest, tok_files)
        finally:
            runner.close()
    staging.publish(partial, out, manifest)
    return manifest


__all__ = ["build_index", "build_index_from_ids", "build_index_from_token_files",
           "default_shard_positions", "MANIFEST_NAME"]
