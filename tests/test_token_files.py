"""Indexes of pre-tokenized files (nanoGPT ``train.bin``, Dolma/OLMo ``.npy``) and of flat id
arrays: the documents are the runs between end-of-document ids, and the index is the one
``build_index_from_ids`` makes of those documents."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from internals import interrupted_at_shard

import anygram.index.token_files as token_files
from anygram import BuildError, Engine
from anygram.cli import main
from anygram.index.build import build_index_from_ids, build_index_from_token_files

EOS = 50256
VOCAB = 50257


def _index_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.is_file() and p.name != "manifest.json"}


def _manifest(directory: Path) -> dict:
    m = json.loads((directory / "manifest.json").read_text())
    m.pop("build")
    m.pop("created_by")
    return m


def _flat(docs: list[list[int]], eos: int, final_eos: bool = True) -> list[int]:
    """Documents as a token file holds them: each followed by ``eos`` (the last one too
    unless not ``final_eos``)."""
    out: list[int] = []
    for k, d in enumerate(docs):
        out += d
        if final_eos or k < len(docs) - 1:
            out.append(eos)
    return out


def _naive_split(ids: list[int], eos: int) -> list[list[int]]:
    """The documents of a flat list: the runs before each eos, and a non-empty tail."""
    docs, cur = [], []
    for t in ids:
        if t == eos:
            docs.append(cur)
            cur = []
        else:
            cur.append(t)
    return docs + ([cur] if cur else [])


DOCS = [[464, 3290, 318], [], [257, 3797, 13, 198], [50255], [0, 1, 2, 3, 4, 5]]


def test_cli_from_ids_equals_build_index_from_ids(tmp_path):
    # nanoGPT: raw little-endian uint16, the GPT-2 end-of-text id after every document; two
    # files, the second without a final eos (its tail is one more document).
    np.array(_flat(DOCS[:3], EOS), dtype="<u2").tofile(tmp_path / "train.bin")
    np.array(_flat(DOCS[3:], EOS, final_eos=False), dtype="<u2").tofile(tmp_path / "val.bin")
    result = CliRunner().invoke(main, [
        "build", "--from-ids", str(tmp_path / "train.bin"), str(tmp_path / "val.bin"),
        "--out", str(tmp_path / "cli"), "--eos-id", str(EOS), "--vocab-size", str(VOCAB),
        "--shard-tokens", "12", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["docs"] == len(DOCS) and summary["tokens"] == sum(map(len, DOCS))
    assert summary["token_dtype"] == "u16" and summary["shards"] > 1
    build_index_from_ids(DOCS, tmp_path / "py", vocab_size=VOCAB, eos_id=EOS, shard_tokens=12)
    assert _index_files(tmp_path / "cli") == _index_files(tmp_path / "py")
    assert _manifest(tmp_path / "cli") == _manifest(tmp_path / "py")
    eng = Engine.open(tmp_path / "cli")
    assert eng.eos_id == EOS
    assert [eng.get_doc(i).token_ids for i in range(len(DOCS))] == DOCS
    assert eng.count([3797, 13]).count == 1


def test_npy_files_raw_and_with_header(tmp_path):
    vocab = 100_278  # Dolma 2's tokenizer: u32 ids
    docs = [[100_277, 5, 6], [7], [99_999, 0]]
    ids = np.array(_flat(docs, 100_257), dtype="<u4")
    ids.tofile(tmp_path / "part-0-00000.npy")  # Dolma/OLMo: a raw memmap under a .npy name
    np.save(tmp_path / "saved.npy", ids.astype(np.int64))  # np.save: the header gives the type
    build_index_from_ids(docs, tmp_path / "py", vocab_size=vocab, eos_id=100_257)
    for name in ("part-0-00000.npy", "saved.npy"):
        build_index_from_token_files(tmp_path / name, tmp_path / name[:4], eos_id=100_257,
                                     vocab_size=vocab, progress=False)
        assert _index_files(tmp_path / name[:4]) == _index_files(tmp_path / "py"), name
    with pytest.raises(BuildError, match=r"header says the ids are int64, not u32"):
        build_index_from_token_files(tmp_path / "saved.npy", tmp_path / "x", eos_id=100_257,
                                     vocab_size=vocab, dtype="u32", progress=False)
    # a u16 file read as u32 makes ids past the vocabulary: the message says what was read
    np.array(_flat(DOCS[:4], EOS), dtype="<u2").tofile(tmp_path / "train.bin")  # 12 ids
    with pytest.raises(BuildError, match=r"train\.bin: id \d+ at position 0 is outside the "
                                         r"vocabulary 0\.\.50256.*32-bit ids were read"):
        build_index_from_token_files(tmp_path / "train.bin", tmp_path / "y", eos_id=EOS,
                                     vocab_size=VOCAB, dtype="u32", progress=False)


def test_split_at_eos_equals_documents_and_flat_arrays_are_refused(tmp_path):
    flat = np.array(_flat(DOCS, EOS), dtype=np.uint16)
    build_index_from_ids(DOCS, tmp_path / "docs", vocab_size=VOCAB, eos_id=EOS)
    build_index_from_ids(flat, tmp_path / "flat", vocab_size=VOCAB, eos_id=EOS,
                         split_at_eos=True)
    assert _index_files(tmp_path / "flat") == _index_files(tmp_path / "docs")
    for docs in (flat, flat.tolist(), iter(flat.tolist())):
        with pytest.raises(BuildError, match="flat sequence of token ids.*split_at_eos=True"):
            build_index_from_ids(docs, tmp_path / "bad", vocab_size=VOCAB, eos_id=EOS)
    with pytest.raises(BuildError, match="split_at_eos needs eos_id"):
        build_index_from_ids(flat, tmp_path / "bad", vocab_size=VOCAB, split_at_eos=True)
    with pytest.raises(BuildError, match="not integer token ids"):
        build_index_from_ids([[1.5, 2.0]], tmp_path / "bad", vocab_size=VOCAB)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()


@given(st.lists(st.integers(0, 4), max_size=40), st.integers(1, 5))
def test_split_at_eos_matches_a_naive_split(ids, chunk):
    eos = 0
    arr = np.array(ids, dtype=np.uint16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(token_files, "_SCAN_CHUNK", chunk)  # eos ids across chunk edges
        got = [d.tolist() for d in token_files.split_at_eos(arr, eos, vocab_size=5)]
    assert got == _naive_split(ids, eos)


def test_the_tokenizer_is_recorded_so_text_queries_work(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = [f"the lazy dog number {i} sleeps near the quick brown fox" for i in range(30)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(str(tmp_path / "tokenizer.json"))
    eos = tok.get_vocab_size()  # an id of its own, past the tokenizer's
    docs = [tok.encode(t).ids for t in texts]
    np.array(_flat(docs, eos), dtype="<u2").tofile(tmp_path / "train.bin")
    result = CliRunner().invoke(main, [
        "build", "--from-ids", str(tmp_path / "train.bin"), "--out", str(tmp_path / "idx"),
        "--eos-id", str(eos), "--vocab-size", str(eos + 1),
        "--tokenizer", str(tmp_path / "tokenizer.json"), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    eng = Engine.open(tmp_path / "idx")
    ids = tok.encode(" lazy dog").ids
    assert eng.tokenize(" lazy dog") == ids
    assert eng.count(" lazy dog").count == eng.count(ids).count == len(texts)
    assert eng.decode(eng.get_doc(3).token_ids) == texts[3]
    with pytest.raises(BuildError, match=f"ids up to {eos - 1}, but vocab_size is 100"):
        build_index_from_token_files(tmp_path / "train.bin", tmp_path / "small", eos_id=99,
                                     vocab_size=100, tokenizer=tmp_path / "tokenizer.json")


def test_bad_token_files(tmp_path, caplog):
    (tmp_path / "odd.bin").write_bytes(b"\x01\x00\x02")
    with pytest.raises(BuildError, match=r"odd\.bin: 3 bytes is not a whole number of u16"):
        build_index_from_token_files(tmp_path / "odd.bin", tmp_path / "i", eos_id=0,
                                     vocab_size=10)
    with pytest.raises(BuildError, match=r"missing\.bin: no such token file"):
        build_index_from_token_files(tmp_path / "missing.bin", tmp_path / "i", eos_id=0,
                                     vocab_size=10)
    np.save(tmp_path / "two_d.npy", np.zeros((2, 3), dtype=np.uint16))
    with pytest.raises(BuildError, match=r"shape \(2, 3\).*one flat array"):
        build_index_from_token_files(tmp_path / "two_d.npy", tmp_path / "i", eos_id=0,
                                     vocab_size=10)
    np.array([1, 2, 3, 4], dtype="<u2").tofile(tmp_path / "no_eos.bin")
    with caplog.at_level(logging.WARNING, logger="anygram"):
        m = build_index_from_token_files(tmp_path / "no_eos.bin", tmp_path / "one", eos_id=9,
                                         vocab_size=10, progress=False)
    assert m.num_docs == 1 and "no end-of-document id 9" in caplog.text

    for args in (["--vocab-size", "10"], ["--eos-id", "0", "--vocab-size", "10",
                                          "--text-field", "body"]):
        result = CliRunner().invoke(main, ["build", "--from-ids", str(tmp_path / "no_eos.bin"),
                                           "--out", str(tmp_path / "c"), *args])
        assert result.exit_code == 2 and "--from-ids" in result.stderr, result.output
    result = CliRunner().invoke(main, ["build", str(tmp_path / "no_eos.bin"), "--out",
                                       str(tmp_path / "c"), "--vocab-size", "10"])
    assert result.exit_code == 2 and "--vocab-size: only with --from-ids" in result.stderr


def test_an_interrupted_token_file_build_resumes(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 500, rng.integers(1, 20)).tolist() for _ in range(40)]
    np.array(_flat(docs, 0), dtype="<u2").tofile(tmp_path / "t.bin")
    opts = dict(eos_id=0, vocab_size=500, shard_tokens=60, progress=False)
    build_index_from_token_files(tmp_path / "t.bin", tmp_path / "fresh", **opts)
    with interrupted_at_shard(3), pytest.raises(KeyboardInterrupt):
        build_index_from_token_files(tmp_path / "t.bin", tmp_path / "idx", **opts)
    assert (tmp_path / "idx.partial").exists()
    build_index_from_token_files(tmp_path / "t.bin", tmp_path / "idx", resume=True, **opts)
    assert _index_files(tmp_path / "idx") == _index_files(tmp_path / "fresh")
    assert Engine.open(tmp_path / "idx").num_docs == len(docs)
