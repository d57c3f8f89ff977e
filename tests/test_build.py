"""The builder: input formats, sharding, metadata, atomic output, resume."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import reference as ref
from internals import interrupted_at_shard

from anygram import BuildError, Engine, IncompleteIndexError, build_index

TEXTS = [f"Document {i}: the quick brown fox {'jumps over' if i % 3 else 'sleeps near'} "
         f"the lazy dog number {i * 7 % 11}." for i in range(60)]


def _write_jsonl(path: Path, texts=TEXTS) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"text": t, "id": i}) + "\n")
    return path


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.is_file() and p.name != "manifest.json"}


def test_bytes_build_counts_equal_reference(tmp_path):
    build_index(_write_jsonl(tmp_path / "c.jsonl"), tmp_path / "idx", progress=False,
                shard_tokens=1500)
    eng = Engine.open(tmp_path / "idx")
    assert eng.num_shards > 2 and eng.token_dtype == "u8" and eng.num_docs == len(TEXTS)
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    corpus, i = [], 0
    for s in m["shards"]:
        corpus.append([list(t.encode()) for t in TEXTS[i:i + s["num_docs"]]])
        i += s["num_docs"]
    for text in ["the", "fox jumps", "dog number 3.", "Document 5", "zebra", ""]:
        q = list(text.encode())
        assert eng.count(text).count == ref.naive_count(corpus, q)
        assert eng.ntd(text).counts == dict(ref.naive_ntd(corpus, q)[1])


def test_input_formats_give_identical_indexes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    plain = _write_jsonl(tmp_path / "c.jsonl")
    with gzip.open(tmp_path / "c.jsonl.gz", "wb") as f:
        f.write(plain.read_bytes())
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    pq.write_table(pa.table({"text": TEXTS, "id": list(range(len(TEXTS)))}), tmp_path / "c.parquet")
    (tmp_path / "c.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    built = {}
    for name in ["c.jsonl", "c.jsonl.gz", "c.jsonl.zst", "c.parquet", "c.txt"]:
        build_index(tmp_path / name, tmp_path / f"idx-{name}", progress=False, metadata=False,
                    txt_mode="line")
        built[name] = _files(tmp_path / f"idx-{name}")
    first = built.pop("c.jsonl")
    for name, files in built.items():
        assert files == first, name


def test_metadata_lines_follow_infini_gram(tmp_path):
    build_index(_write_jsonl(tmp_path / "c.jsonl"), tmp_path / "idx", progress=False)
    lines = (tmp_path / "idx" / "metadata.0").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(TEXTS)
    first = json.loads(lines[0])
    assert first["metadata"] == {"id": 0} and first["linenum"] == 0
    assert first["path"].endswith("c.jsonl")
    offs = np.fromfile(tmp_path / "idx" / "metaoff.0", dtype="<u8")
    data = (tmp_path / "idx" / "metadata.0").read_bytes()
    assert json.loads(data[offs[5]:offs[6]])["metadata"] == {"id": 5}


def test_existing_output_is_not_overwritten(tmp_path):
    src = _write_jsonl(tmp_path / "c.jsonl")
    build_index(src, tmp_path / "idx", progress=False)
    with pytest.raises(BuildError, match="already exists"):
        build_index(src, tmp_path / "idx", progress=False)
    build_index(src, tmp_path / "idx", progress=False, overwrite=True, shard_tokens=2000)
    assert Engine.open(tmp_path / "idx").num_shards > 1


def test_interrupted_build_never_opens_and_resumes(tmp_path):
    src = _write_jsonl(tmp_path / "c.jsonl")
    build_index(src, tmp_path / "fresh", progress=False, shard_tokens=1200)
    with interrupted_at_shard(3), pytest.raises(KeyboardInterrupt):
        build_index(src, tmp_path / "idx", progress=False, shard_tokens=1200)
    assert not (tmp_path / "idx").exists()
    with pytest.raises(IncompleteIndexError, match="--resume"):
        Engine.open(tmp_path / "idx")
    progress = json.loads((tmp_path / "idx.partial" / "progress.json").read_text())
    assert len(progress["shards"]) == 2

    with pytest.raises(BuildError, match="other inputs or options"):
        build_index(src, tmp_path / "idx", progress=False, shard_tokens=999, resume=True)
    # (a mismatched resume must not have destroyed the partial build)
    assert (tmp_path / "idx.partial" / "progress.json").exists()
    build_index(src, tmp_path / "idx", progress=False, shard_tokens=1200, resume=True)
    assert not (tmp_path / "idx.partial").exists()
    assert _files(tmp_path / "idx") == _files(tmp_path / "fresh")


def test_hf_tokenizer_build_u16_and_parallel_workers_agree(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXTS, trainer)
    tok.save(str(tmp_path / "tokenizer.json"))
    src = _write_jsonl(tmp_path / "c.jsonl")
    m1 = build_index(src, tmp_path / "one", tokenizer=tmp_path / "tokenizer.json",
                     workers=1, progress=False)
    build_index(src, tmp_path / "two", tokenizer=tmp_path / "tokenizer.json", workers=2,
                progress=False)
    assert m1.token_width == 2
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    eng = Engine.open(tmp_path / "one")  # the index carries its own copy of the tokenizer
    ids = tok.encode(" the lazy dog").ids  # mid-text words carry their space
    assert eng.tokenize(" the lazy dog") == ids
    assert eng.count(" the lazy dog").count == eng.count(ids).count == len(TEXTS)
    assert "lazy dog" in eng.decode(ids)


def test_bad_eos_id_is_refused(tmp_path):
    src = _write_jsonl(tmp_path / "c.jsonl")
    for bad in (-5, 255, 10**6):
        with pytest.raises(BuildError, match="eos_id"):
            build_index(src, tmp_path / "idx", progress=False, eos_id=bad)
    assert not (tmp_path / "idx").exists()


@pytest.mark.parametrize("what", ["a directory of notes", "a file", "a link to an index",
                                  "an empty directory", "an index and notes"])
def test_overwrite_replaces_only_an_index(tmp_path, what):
    """--overwrite deletes nothing that is not an index: a working directory, a file, a link,
    an index holding someone's notes are refused (BuildError) and left as they were."""
    src = _write_jsonl(tmp_path / "c.jsonl", TEXTS[:5])
    out = tmp_path / "out"
    if what == "a directory of notes":
        (out / "sub").mkdir(parents=True)
        (out / "notes.txt").write_text("precious")
    elif what == "a file":
        out.write_text("precious")
    elif what == "a link to an index":
        build_index(src, tmp_path / "real", progress=False)
        out.symlink_to(tmp_path / "real")
    elif what == "an empty directory":
        out.mkdir()
    else:
        build_index(src, out, progress=False)
        (out / "notes.txt").write_text("precious")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(BuildError, match="--out"):
        build_index(src, out, progress=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    if what == "a file":
        assert out.read_text() == "precious"


def test_overwrite_replaces_an_index_and_its_takedown(tmp_path, monkeypatch):
    from anygram import takedown as td

    src = _write_jsonl(tmp_path / "c.jsonl")
    build_index(src, tmp_path / "idx", progress=False, shard_tokens=1500)
    td.take_down(tmp_path / "idx", [1])
    (tmp_path / "idx.old").mkdir()  # a name of the user's: the old index must not take it
    (tmp_path / "idx.old" / "keep.txt").write_text("mine")
    build_index(_write_jsonl(tmp_path / "d.jsonl", TEXTS[:3]), tmp_path / "idx",
                progress=False, overwrite=True)
    assert Engine.open(tmp_path / "idx").num_docs == 3
    assert not (tmp_path / "idx" / "takedown.json").exists()
    assert (tmp_path / "idx.old" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "d.jsonl", "idx",
                                                         "idx.old"]
    # --out . from inside an index replaces it; from inside anything else it is refused.
    monkeypatch.chdir(tmp_path / "idx")
    build_index(src, ".", progress=False, overwrite=True)
    assert Engine.open(tmp_path / "idx").num_docs == len(TEXTS)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BuildError, match="not part of an index"):
        build_index(src, ".", progress=False, overwrite=True)


def test_a_stale_partial_holding_other_files_is_not_deleted(tmp_path):
    (tmp_path / "idx.partial").mkdir()
    (tmp_path / "idx.partial" / "thesis.tex").write_text("precious")
    with pytest.raises(BuildError, match="thesis.tex"):
        build_index(_write_jsonl(tmp_path / "c.jsonl"), tmp_path / "idx", progress=False)
    assert (tmp_path / "idx.partial" / "thesis.tex").read_text() == "precious"


def test_every_file_has_a_checksum_and_older_manifests_still_open(tmp_path):
    """The build records a sha256 of every file (what verify checks); a manifest without
    them (an older anygram's) opens, and verify checks its structure and says so."""
    from anygram.fileio import sha256_file
    from anygram.index.format import is_sidecar
    from anygram.index.verify import verify_index

    build_index(_write_jsonl(tmp_path / "c.jsonl"), tmp_path / "idx", progress=False,
                shard_tokens=1500)
    path = tmp_path / "idx" / "manifest.json"
    m = json.loads(path.read_text())
    for shard in m["shards"]:
        for name, entry in shard["files"].items():
            if is_sidecar(name):
                continue  # the search sample, the next-token table: a CRC, checked on load
                # and by verify in full
            assert entry["checksum"] == "sha256:" + sha256_file(tmp_path / "idx" / name)
            entry.pop("checksum")
    path.write_text(json.dumps(m))
    eng = Engine.open(tmp_path / "idx")
    assert eng.count("the lazy dog").count == len(TEXTS)
    report = verify_index(tmp_path / "idx")
    assert report.ok and any("no checksum recorded" in n for n in report.notes)


def test_datasets_folder_builds_like_jsonl_and_counts_skipped_files(tmp_path):
    import pyarrow as pa
    from hf_datasets import save_to_disk

    save_to_disk(tmp_path / "ds", pa.table({"text": TEXTS, "id": list(range(len(TEXTS)))}),
                  shards=2)
    (tmp_path / "ds" / "README.md").write_text("a dataset card")
    m = build_index(tmp_path / "ds", tmp_path / "from-ds", progress=False, metadata=False)
    build_index(_write_jsonl(tmp_path / "c.jsonl"), tmp_path / "from-jsonl", progress=False,
                metadata=False)
    assert _files(tmp_path / "from-ds") == _files(tmp_path / "from-jsonl")
    assert m.build["skipped_files"] == 3  # README.md, dataset_info.json, state.json
    meta = build_index(tmp_path / "ds", tmp_path / "meta", progress=False)
    assert meta.has_metadata
    assert Engine.open(tmp_path / "meta").get_doc(31).metadata["metadata"] == {"id": 31}
