"""Pre-tokenized corpora: flat files of token ids with an end-of-document id between the
documents (nanoGPT's ``train.bin``, Dolma/OLMo's ``.npy`` memmaps), read as documents.

A token file is either

* raw: little-endian unsigned ids of one width and nothing else (nanoGPT ``.bin``; Dolma and
  OLMo write such files under a ``.npy`` name), read as ``dtype`` (default: ``u16`` when the
  vocabulary fits, else ``u32``, as nanoGPT and OLMo choose), or
* a NumPy ``.npy`` file with its header (``np.save``): a 1-d integer array, its type from the
  header.

Documents are the runs of ids between end-of-document ids (``eos_id``, which is dropped: the
index separates documents itself). Each document ends with ``eos_id``, except that ids after
the last one of a file form one more document. Files are memory-mapped and scanned in chunks,
so a file of any size is read in constant memory; documents are views of the map.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import BuildError

__all__ = ["TOKEN_FILE_DTYPES", "default_dtype", "open_token_file", "split_at_eos",
           "iter_token_documents"]

log = logging.getLogger("anygram")

#: The types of raw token files, by name.
TOKEN_FILE_DTYPES: dict[str, str] = {"u8": "<u1", "u16": "<u2", "u32": "<u4"}
_NPY_MAGIC = b"\x93NUMPY"
#: Ids compared with ``eos_id`` at a time: bounds the scan's memory (a mask of this many bools).
_SCAN_CHUNK = 1 << 24


def default_dtype(vocab_size: int) -> str:
    """The type of a raw token file of ``vocab_size`` ids, when not given: ``u16`` when every
    id fits in 16 bits, else ``u32`` (the choice of nanoGPT and OLMo)."""
    return "u16" if vocab_size <= 1 << 16 else "u32"


def open_token_file(path: str | Path, dtype: str | None = None, *,
                    vocab_size: int | None = None) -> np.ndarray:
    """The ids of one token file: a read-only array over its memory map.

    ``dtype`` (``"u8"``, ``"u16"``, ``"u32"``) is the type of a raw file (default:
    :func:`default_dtype` of ``vocab_size``); a ``.npy`` file with a header has its own
    (``dtype``, when given, must agree with it). Raises :class:`~anygram.errors.BuildError`
    for a missing or malformed file.
    """
    p = Path(path)
    if not p.is_file():
        raise BuildError(f"{path}: no such token file; check the path")
    with open(p, "rb") as f:
        has_header = f.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    if dtype is not None and dtype not in TOKEN_FILE_DTYPES:
        raise BuildError(f"unknown token file type {dtype!r}: use one of "
                         f"{', '.join(TOKEN_FILE_DTYPES)}")
    if has_header:
        try:
            ids = np.load(p, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BuildError(f"{path}: not a readable .npy file ({exc})") from None
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise BuildError(f"{path}: a .npy of shape {ids.shape} and type {ids.dtype}; a "
                             "token file holds one flat array of integer ids")
        if dtype is not None and np.dtype(TOKEN_FILE_DTYPES[dtype]) != ids.dtype:
            raise BuildError(f"{path}: its header says the ids are {ids.dtype}, not {dtype}")
        return _plain(ids)
    if dtype is None:
        if vocab_size is None:
            raise BuildError(f"{path}: a raw token file needs its type (u16 or u32)")
        dtype = default_dtype(vocab_size)
    width = np.dtype(TOKEN_FILE_DTYPES[dtype]).itemsize
    size = p.stat().st_size
    if size % width:
        raise BuildError(f"{path}: {size} bytes is not a whole number of {dtype} ids; is the "
                         "type right?")
    if size == 0:
        return np.zeros(0, dtype=TOKEN_FILE_DTYPES[dtype])
    return _plain(np.memmap(p, dtype=TOKEN_FILE_DTYPES[dtype], mode="r"))


def _plain(ids: np.ndarray) -> np.ndarray:
    """A plain ndarray view of a memory map (which it keeps open): slicing a ``np.memmap``
    costs several times more, and a corpus is sliced once per document."""
    return ids.view(np.ndarray)


def split_at_eos(ids: np.ndarray, eos_id: int, *, vocab_size: int | None = None,
                 where: str = "the ids") -> Iterator[np.ndarray]:
    """The documents of a flat array of ids: the runs before each ``eos_id``, and the ids
    after the last one when there are any (views of ``ids``, in order).

    With ``vocab_size``, every id is checked to be below it (:class:`BuildError` naming the
    position otherwise). ``where`` names the ids in messages (a file name).
    """
    if ids.ndim != 1:
        raise BuildError(f"{where}: a flat array of ids is needed, not shape {ids.shape}")
    start = 0
    found = False
    for lo in range(0, ids.shape[0], _SCAN_CHUNK):
        chunk = ids[lo:lo + _SCAN_CHUNK]
        if vocab_size is not None:
            _check_range(chunk, lo, vocab_size, where)
        for end in (np.flatnonzero(chunk == eos_id) + lo).tolist():
            found = True
            yield ids[start:end]
            start = end + 1
    if start < ids.shape[0]:
        if not found and ids.shape[0] > 1:
            log.warning("%s holds no end-of-document id %d: all its %d ids are one document "
                        "(is the eos id right?)", where, eos_id, ids.shape[0])
        yield ids[start:]


def _check_range(chunk: np.ndarray, offset: int, vocab_size: int, where: str) -> None:
    bad = np.flatnonzero((chunk < 0) | (chunk >= vocab_size)) if chunk.dtype.kind == "i" \
        else np.flatnonzero(chunk >= vocab_size)
    if bad.shape[0]:
        at = int(bad[0])
        raise BuildError(
            f"{where}: id {int(chunk[at])} at position {offset + at} is outside the "
            f"vocabulary 0..{vocab_size - 1}; check --vocab-size, and the type of a raw file "
            f"({chunk.dtype.itemsize * 8}-bit ids were read)")


def iter_token_documents(paths: Sequence[str | Path], *, eos_id: int, vocab_size: int,
                         dtype: str | None = None) -> Iterator[np.ndarray]:
    """The documents of token files, file after file (a document never spans two files);
    see :func:`open_token_file` and :func:`split_at_eos`. Every id is checked against
    ``vocab_size``. The files are opened (and their types checked) before the first
    document is read."""
    arrays = [(str(p), open_token_file(p, dtype, vocab_size=vocab_size)) for p in paths]

    def documents() -> Iterator[np.ndarray]:
        for where, ids in arrays:
            yield from split_at_eos(ids, eos_id, vocab_size=vocab_size, where=where)

    return documents()
