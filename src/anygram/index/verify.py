"""``anygram verify``: read a whole index and check what every open only samples.

Opening an index checks sizes, the manifest and a sample of each file
(:mod:`anygram.index.checks`); a damaged value the sample misses is refused by the kernel that
meets it, so a query either answers from sound data or raises. What no check short of
reading everything can rule out is an answer computed from damaged data that still looks
sound; this module reads everything:

- every file's sha256 against the ``checksum`` the build recorded (and the tokenizer's);
- every document offset (in order, aligned, at a separator) and the separators' count, every
  metadata line offset, and the largest token id against the vocabulary;
- every suffix-array entry a token offset, each suffix strictly before the next (compared to
  the end): with one entry per position this makes the table a permutation in suffix order;
- the sidecars beside each shard (the search sample ``sample.{s}``, the next-token table
  ``ntd.{s}``), if any: equal to the ones its files give;
- the takedown record: its index verified the same way, and its documents equal, token for
  token, to the documents the record lists.

The files are read through memory maps, in order (the suffix comparisons read the token file
at random): the memory used stays the page cache's, whatever the index size. Cost: about one
sequential read of the index for the checksums, plus ``O(positions)`` random reads and the
suffixes' common prefixes for the order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from ..errors import IndexFormatError
from ..fileio import sha256_file
from ..kernels.checks import token_stats
from . import checks, ntd_table, takedown
from . import sample as search_sample
from .format import Manifest, inside, is_sidecar, shard_file_names
from .reader import OpenedIndex, Shard, open_index

#: Suffix-array ranks (and token bytes) checked per kernel call: the progress bar's step.
CHUNK = 1 << 22

_S = TypeVar("_S")


@dataclass
class VerifyReport:
    """What :func:`verify_index` found. ``ok`` when there is no problem; ``notes`` name what
    could not be checked (an infini-gram index has no recorded checksums)."""

    index: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shards: int = 0
    positions: int = 0
    docs: int = 0
    bytes_hashed: int = 0
    seconds: float = 0.0
    takedown: VerifyReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and (self.takedown is None or self.takedown.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "ok": self.ok, "problems": self.problems,
                "notes": self.notes, "shards": self.shards, "positions": self.positions,
                "docs": self.docs, "bytes_hashed": self.bytes_hashed,
                "seconds": round(self.seconds, 3),
                "takedown": self.takedown.to_dict() if self.takedown else None}


def verify_index(path: str | Path, *, progress: bool = False) -> VerifyReport:
    """Check every byte of an index (see the module docstring); never raises for damage.

    Returns:
        A :class:`VerifyReport`; ``report.ok`` is False when anything is wrong, each problem
        one line in ``report.problems``.

    Raises:
        IndexNotFoundError: there is no index at ``path``.
    """
    started = time.perf_counter()
    directory = Path(path)
    report = VerifyReport(index=str(directory))
    try:
        index = open_index(directory)
    except IndexFormatError as e:  # IndexNotFoundError is not one: it propagates
        report.problems.append(str(e))
    else:
        _verify_opened(index, report, progress)
    report.seconds = time.perf_counter() - started
    return report


def _verify_opened(index: OpenedIndex, report: VerifyReport, progress: bool) -> None:
    directory = index.directories[0]
    report.shards = len(index.shards)
    report.positions = sum(s.num_positions for s in index.shards)
    report.docs = sum(s.num_docs for s in index.shards)
    manifest = index.manifest
    if manifest is None:
        report.notes.append("no manifest (an infini-gram index): no checksums to compare, "
                            "token ids not checked against a vocabulary")
    else:
        _verify_checksums(directory, manifest, report, progress)
    for shard in index.shards:
        _problem(report, _verify_shard, shard, manifest, progress)
        _problem(report, _verify_sidecars, shard, report)
    _problem(report, _verify_takedown, directory, index, report, progress)


def _problem(report: VerifyReport, check: Any, *args: Any) -> None:
    """Run one check; an IndexFormatError it raises becomes a problem of the report."""
    try:
        check(*args)
    except IndexFormatError as e:
        report.problems.append(str(e))


def _verify_checksums(directory: Path, manifest: Manifest, report: VerifyReport,
                      progress: bool) -> None:
    files: list[tuple[Path, str]] = []
    for info in manifest.shards:
        for name, entry in info.files.items():
            if is_sidecar(name):
                continue  # not a part of the index: checked whole by _verify_sidecars
            digest = entry.get("checksum", "").removeprefix("sha256:") or entry.get("sha256")
            if digest:
                files.append((inside(directory, name, "shard file"), digest))
            else:
                report.notes.append(f"{directory / name}: no checksum recorded (built by an "
                                    "older anygram): its structure is checked, not its bytes")
    tok = manifest.tokenizer or {}
    if tok.get("file") and tok.get("sha256"):
        files.append((inside(directory, tok["file"], "tokenizer file"), tok["sha256"]))
    total = sum(p.stat().st_size for p, _ in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="sha256", disable=not progress) as bar:
        for p, digest in files:
            if sha256_file(p) != digest:
                report.problems.append(f"{p} does not match the checksum recorded at build "
                                       "time: the file was changed; rebuild the index")
            bar.update(p.stat().st_size)
    report.bytes_hashed += total


def _verify_shard(shard: Shard, manifest: Manifest | None, progress: bool) -> None:
    checks.check_documents(shard, samples=None)
    w = shard.token_width
    seps, top = 0, -1
    for lo in range(0, shard.ds_bytes, CHUNK * w):
        s, t = token_stats(shard.ds, w, lo, min(lo + CHUNK * w, shard.ds_bytes))
        seps, top = seps + s, max(top, t)
    tokenized = shard.directory / shard_file_names(shard.file_suffix)["tokenized"]
    if seps != shard.num_docs:
        raise IndexFormatError(f"{tokenized} holds {seps} document separators for "
                               f"{shard.num_docs} documents: the index is damaged; rebuild it")
    if manifest is not None and top >= manifest.vocab_size:
        raise IndexFormatError(f"{tokenized} holds token id {top}, outside the vocabulary "
                               f"(0..{manifest.vocab_size - 1}): the index is damaged; rebuild it")
    if shard.metadata is not None and shard.metaoff is not None and shard.num_docs > 1:
        starts = np.asarray(shard.metaoff[1:], dtype=np.int64)
        if not bool(np.all(shard.metadata[starts - 1] == ord("\n"))):
            metaoff = shard.directory / shard_file_names(shard.file_suffix)["metaoff"]
            raise IndexFormatError(f"{metaoff} does not point at the starts of metadata lines: "
                                   "the index is damaged; rebuild it")
    n = shard.num_positions
    with tqdm(total=n, unit="rank", unit_scale=True, desc=f"suffix order {shard.name}",
              disable=not progress) as bar:
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            checks.check_table(shard, samples=None, max_bytes=-1, start=lo, stop=hi)
            bar.update(hi - lo)


def _verify_sidecars(shard: Shard, report: VerifyReport) -> None:
    """Each sidecar beside the shard, if any, equals the one its files give. A wrong search
    sample never gives a wrong answer (the searches check its brackets) but slows them down
    until they find it out; a next-token table is checked row by row as it is used, but one
    made wrong on purpose (its check values recomputed) is only found here."""
    args = (shard.ds, shard.sa, shard.token_width, shard.ptr_width)
    smp = shard.directory / search_sample.sample_name(shard.file_suffix)
    _verify_sidecar(smp, report, lambda: search_sample.read(smp, *args),
                    lambda found: search_sample.build(*args, stride=found.stride,
                                                      key_bytes=found.keys.shape[1]),
                    lambda x: (x.keys, x.lens, x.ptrs))
    ntd = shard.directory / ntd_table.table_name(shard.file_suffix)
    _verify_sidecar(ntd, report, lambda: ntd_table.read(ntd, *args, shard.identity),
                    lambda found: ntd_table.build(*args, threshold=found.threshold),
                    ntd_table.NtdTable.arrays)


def _verify_sidecar(path: Path, report: VerifyReport, read: Callable[[], _S | None],
                    rebuild: Callable[[_S], _S], arrays: Callable[[_S], Sequence[np.ndarray]]
                    ) -> None:
    if not path.exists() and not path.is_symlink():
        return
    found = read()
    if found is None:
        report.notes.append(f"{path} is stale or damaged: it is not used, and is rebuilt on "
                            "first use")
        return
    sound = rebuild(found)
    if not all(np.array_equal(a, b) for a, b in zip(arrays(found), arrays(sound))):
        raise IndexFormatError(f"{path} does not match the shard's suffix array: delete it "
                               "(it is rebuilt on first use)")


def _verify_takedown(directory: Path, index: OpenedIndex, report: VerifyReport,
                     progress: bool) -> None:
    record = takedown.read_record(directory)
    if record is None:
        return
    where = takedown.takedown_dir(directory, record)
    report.takedown = verify_index(where, progress=progress)
    if not report.takedown.ok:
        return
    minus = open_index(where)
    takedown.check_takedown_index(directory, record, index.shards, minus.shards)
    bases = np.cumsum([0] + [s.num_docs for s in index.shards])
    removed = (_document(s, d) for s in minus.shards for d in range(s.num_docs))
    for doc_id, tokens in zip(record["doc_ids"], removed):
        shard = int(np.searchsorted(bases, doc_id, side="right")) - 1
        if not np.array_equal(_document(index.shards[shard], doc_id - int(bases[shard])),
                              tokens):
            raise IndexFormatError(f"{where} does not hold the tokens of document {doc_id}: "
                                   "take the documents down again (anygram takedown --undo, "
                                   "then the ids again)")


def _document(shard: Shard, local: int) -> np.ndarray:
    """The bytes of one document of a shard, its separator included."""
    end = int(shard.offsets[local + 1]) if local + 1 < shard.num_docs else shard.ds_bytes
    return np.asarray(shard.ds[int(shard.offsets[local]):end])
