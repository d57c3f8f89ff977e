"""Tests of anygram.tokenization: every adapter built from tiny tokenizers trained in the test."""

from __future__ import annotations

import base64
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anygram.errors import InvalidQueryError, TokenizerError, TokenOutOfRangeError
from anygram.tokenization import (
    ByteTokenizer,
    HFTokenizer,
    SentencePieceTokenizer,
    TiktokenTokenizer,
    Tokenizer,
    load_tokenizer,
    token_width_for,
)

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, this is a tiny tokenizer test",
    "the cat sat on the mat and the dog sat on the log",
    "numbers like 12345 and 67890 appear here",
]
ASCII_TEXT = "the lazy cat jumps over 42 dogs, hello world!"


# ---------------------------------------------------------------- bytes


@given(st.text())
def test_bytes_round_trip(text: str) -> None:
    tok = load_tokenizer("bytes")
    try:
        expected = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 form
        with pytest.raises(TokenizerError):
            tok.encode(text)
        return
    ids = tok.encode(text)
    assert ids == list(expected)
    assert all(0 <= i <= tok.max_id for i in ids)
    assert tok.decode(ids) == text


def test_bytes_properties() -> None:
    tok = load_tokenizer("bytes")
    assert isinstance(tok, ByteTokenizer) and isinstance(tok, Tokenizer)
    assert tok.kind == "bytes"
    assert tok.max_id == 254
    assert tok.eos_id is None
    assert tok.files() == []
    assert tok.spec() == {"kind": "bytes", "file": None, "sha256": None}
    assert isinstance(load_tokenizer(tok.spec()), ByteTokenizer)
    assert tok.encode_batch(["ab", "", "é"]) == [[97, 98], [], [0xC3, 0xA9]]
    assert pickle.loads(pickle.dumps(tok)).encode("x") == [120]


def test_bytes_decode_is_lenient_and_checks_range() -> None:
    tok = load_tokenizer("bytes")
    euro = tok.encode("€")  # three bytes
    assert tok.decode(euro[:2]) == "\ufffd"
    assert tok.decode(tok.encode("a") + euro[:1]) == "a\ufffd"
    with pytest.raises(TokenOutOfRangeError):
        tok.decode([255])
    with pytest.raises(TokenOutOfRangeError):
        tok.decode([-1])


@pytest.mark.parametrize(
    ("max_id", "width"),
    [(0, 1), (254, 1), (255, 2), (65534, 2), (65535, 4), (2**32 - 2, 4)],
)
def test_token_width_for(max_id: int, width: int) -> None:
    assert token_width_for(max_id) == width


@pytest.mark.parametrize("max_id", [2**32 - 1, 2**40, -1])
def test_token_width_for_rejects(max_id: int) -> None:
    with pytest.raises(TokenizerError):
        token_width_for(max_id)


# ---------------------------------------------------------------- Hugging Face


def _train_hf(path: Path) -> Path:
    from tokenizers import Tokenizer as HFTok
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = HFTok(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES * 3, trainer=trainer)
    tok.save(str(path))
    return path


@pytest.fixture()
def hf_path(tmp_path: Path) -> Path:
    return _train_hf(tmp_path / "tokenizer.json")


def test_hf_round_trip(hf_path: Path) -> None:
    tok = load_tokenizer(hf_path)
    assert isinstance(tok, HFTokenizer) and tok.kind == "hf"
    ids = tok.encode(ASCII_TEXT)
    assert ids and all(0 <= i <= tok.max_id for i in ids)
    assert tok.decode(ids) == ASCII_TEXT
    # merges were learned, so common words take fewer tokens than bytes
    assert len(tok.encode("the the the")) < len("the the the")
    assert tok.encode_batch(SENTENCES + [""]) == [tok.encode(s) for s in SENTENCES + [""]]
    assert tok.eos_id == 0  # <|endoftext|> was the first special token
    import tokenizers

    raw = tokenizers.Tokenizer.from_file(str(hf_path))
    assert tok.max_id == max(raw.get_vocab(with_added_tokens=True).values())
    assert tok.files() == [hf_path.resolve()]


def test_hf_decode_cut_inside_character(hf_path: Path) -> None:
    tok = load_tokenizer(hf_path)
    ids = tok.encode("a€")  # € is unseen in training: one token per UTF-8 byte
    assert tok.decode(ids) == "a€"
    assert tok.decode(ids[:-1]) == "a\ufffd"
    with pytest.raises(TokenOutOfRangeError):
        tok.decode([tok.max_id + 1])


def test_hf_sparse_ids_and_no_truncation(tmp_path: Path) -> None:
    path = _train_hf(tmp_path / "tokenizer.json")
    data = json.loads(path.read_text())
    # a token far past the rest of the vocabulary (HF keeps the id only if the model vocab has it,
    # and then get_vocab_size() is 301, not 1001), and a truncation setting that must be ignored
    data["model"]["vocab"]["</s>"] = 1000
    data["added_tokens"].append(
        {
            "id": 1000,
            "content": "</s>",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
    )
    data["truncation"] = {
        "direction": "Right",
        "max_length": 2,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    path.write_text(json.dumps(data))
    tok = load_tokenizer(path)
    assert tok.max_id == 1000
    assert tok.eos_id == 1000  # "</s>" is preferred over "<|endoftext|>"
    assert len(tok.encode(ASCII_TEXT)) > 2
    assert tok.decode(tok.encode(ASCII_TEXT)) == ASCII_TEXT


def test_hf_spec_and_reload(hf_path: Path, tmp_path: Path) -> None:
    tok = load_tokenizer(hf_path)
    spec = tok.spec()
    assert spec["kind"] == "hf" and spec["file"] == "tokenizer.json"
    assert isinstance(spec["sha256"], str) and len(spec["sha256"]) == 64
    assert json.loads(json.dumps(spec)) == spec
    again = load_tokenizer(spec, base_dir=hf_path.parent)
    assert again.encode(ASCII_TEXT) == tok.encode(ASCII_TEXT)
    # relative path string + base_dir
    assert load_tokenizer("tokenizer.json", base_dir=tmp_path).encode("hello") == tok.encode(
        "hello"
    )

    hf_path.write_text(hf_path.read_text().replace('"<|endoftext|>"', '"<|eot|>"'))
    with pytest.raises(TokenizerError, match="changed"):
        load_tokenizer(spec, base_dir=hf_path.parent)


def test_hf_pickle(hf_path: Path) -> None:
    tok = load_tokenizer(hf_path)
    clone = pickle.loads(pickle.dumps(tok))
    assert isinstance(clone, HFTokenizer)
    assert clone.encode(ASCII_TEXT) == tok.encode(ASCII_TEXT)
    assert clone.spec() == tok.spec()
    # a pickle refuses a file that changed after the parent loaded it
    blob = pickle.dumps(tok)
    hf_path.write_text(hf_path.read_text() + "\n")
    with pytest.raises(TokenizerError, match="changed"):
        pickle.loads(blob)


# ---------------------------------------------------------------- tiktoken

TIKTOKEN_MERGES = [b"th", b"the", b" t", b" the", b"he", b"ll", b"llo"]


def _write_tiktoken(path: Path) -> Path:
    tokens = [bytes([b]) for b in range(256)] + TIKTOKEN_MERGES
    path.write_text(
        "".join(f"{base64.b64encode(t).decode()} {rank}\n" for rank, t in enumerate(tokens))
    )
    return path


def test_tiktoken_round_trip(tmp_path: Path) -> None:
    path = _write_tiktoken(tmp_path / "tiny.tiktoken")
    tok = load_tokenizer(path)
    assert isinstance(tok, TiktokenTokenizer) and tok.kind == "tiktoken"
    assert tok.max_id == 256 + len(TIKTOKEN_MERGES) - 1
    assert tok.eos_id is None  # unknown stem: no special tokens
    ids = tok.encode(ASCII_TEXT)
    assert tok.decode(ids) == ASCII_TEXT
    assert tok.encode("the") == [256 + TIKTOKEN_MERGES.index(b"the")]
    assert tok.encode_batch(SENTENCES) == [tok.encode(s) for s in SENTENCES]
    # special-token text is ordinary text
    assert tok.decode(tok.encode("<|endoftext|>")) == "<|endoftext|>"
    euro = tok.encode("€")
    assert tok.decode(euro[:1]) == "\ufffd"
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode(ASCII_TEXT) == ids
    spec = tok.spec()
    assert spec["encoding"] is None and "pattern" in spec
    assert load_tokenizer(spec, base_dir=tmp_path).encode(ASCII_TEXT) == ids


def test_tiktoken_preset_from_stem(tmp_path: Path) -> None:
    path = _write_tiktoken(tmp_path / "cl100k_base.tiktoken")
    tok = load_tokenizer(path)
    assert tok.eos_id == 100257
    assert tok.max_id == 100276
    assert tok.spec()["encoding"] == "cl100k_base"
    with pytest.raises(TokenOutOfRangeError):  # a gap between ranks and special tokens
        tok.decode([100000])
    assert tok.decode([100257]) == "<|endoftext|>"


def test_tiktoken_spec_options(tmp_path: Path) -> None:
    _write_tiktoken(tmp_path / "tiny.tiktoken")
    spec = {
        "kind": "tiktoken",
        "file": "tiny.tiktoken",
        "pattern": r"\S+|\s+",
        "special_tokens": {"<eot>": 500},
    }
    tok = load_tokenizer(spec, base_dir=tmp_path)
    assert tok.eos_id is None and tok.max_id == 500
    assert tok.decode(tok.encode("a b")) == "a b"
    out = tok.spec()
    assert out["pattern"] == r"\S+|\s+" and out["special_tokens"] == {"<eot>": 500}
    with pytest.raises(TokenizerError, match="unknown option"):
        load_tokenizer({**spec, "patern": "x"}, base_dir=tmp_path)


# ---------------------------------------------------------------- sentencepiece


def _train_sentencepiece(path: Path) -> Path:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 10),
        model_writer=model,
        vocab_size=60,
        model_type="bpe",
        num_threads=1,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())
    return path


def test_sentencepiece_round_trip(tmp_path: Path) -> None:
    path = _train_sentencepiece(tmp_path / "tiny.model")
    tok = load_tokenizer(path)
    assert isinstance(tok, SentencePieceTokenizer) and tok.kind == "sentencepiece"
    assert tok.max_id == 59
    assert tok.eos_id == 2  # sentencepiece default </s>
    text = "the lazy dog sat on the mat"
    ids = tok.encode(text)
    assert ids and tok.eos_id not in ids and 1 not in ids  # no BOS/EOS added
    assert tok.decode(ids) == text
    assert tok.encode_batch([text, "hello world"]) == [tok.encode(text), tok.encode("hello world")]
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.encode(text) == ids
    assert load_tokenizer(tok.spec(), base_dir=tmp_path).encode(text) == ids
    with pytest.raises(TokenOutOfRangeError):
        tok.decode([60])



def test_decode_unchecked_and_check_range_for_every_adapter(tmp_path: Path, hf_path: Path) -> None:
    """decode(checked=False) equals decode on valid lists; check_range guards arrays of ids
    as decode's own check does (an index's page is checked once, then decoded unchecked)."""
    toks = [load_tokenizer("bytes"), load_tokenizer(hf_path),
            load_tokenizer(_write_tiktoken(tmp_path / "tiny.tiktoken")),
            load_tokenizer(_train_sentencepiece(tmp_path / "tiny.model"))]
    for tok in toks:
        ids = tok.encode("the lazy dog sat on the mat")
        assert tok.decode(ids, checked=False) == tok.decode(ids)
        for dtype in (np.uint16, np.int64, np.uint32):
            arr = np.array(ids, dtype=dtype)
            assert tok.decode(arr) == tok.decode(ids)
            tok.check_range(arr)
            tok.check_range(arr[:0])
        for bad in ([tok.max_id + 1], [0, -1]):
            with pytest.raises(TokenOutOfRangeError, match=str(bad[-1])):
                tok.check_range(np.array(bad, dtype=np.int64))
            with pytest.raises(TokenOutOfRangeError):
                tok.decode(np.array(bad, dtype=np.int64))



def test_word_start_ids_are_the_tokens_that_begin_with_whitespace(tmp_path: Path,
                                                                  hf_path: Path) -> None:
    """Each adapter's word starts: whitespace-led tokens, judged from the token itself."""
    tok = load_tokenizer("bytes")
    assert tok.word_start_ids().tolist() == [9, 10, 11, 12, 13, 32]
    tik = load_tokenizer(_write_tiktoken(tmp_path / "tiny.tiktoken"))
    assert tik.word_start_ids().tolist() == [9, 10, 11, 12, 13, 32,
                                             256 + TIKTOKEN_MERGES.index(b" t"),
                                             256 + TIKTOKEN_MERGES.index(b" the")]
    hf = load_tokenizer(hf_path)
    sp = load_tokenizer(_train_sentencepiece(tmp_path / "tiny.model"))
    for t in (tok, tik, hf, sp):
        starts = set(t.word_start_ids().tolist())
        assert t.word_start_ids() is t.word_start_ids()  # computed once
        assert t.encode(" the lazy dog")[0] in starts
        first, *_ = t.encode("lazy dog")
        assert (first in starts) == (t.kind == "sentencepiece")  # its dummy prefix "▁"
        for i in starts:  # decoded after a letter, every word start adds whitespace next
            assert t.decode([*t.encode("a"), i])[1:2].isspace() or t.kind == "sentencepiece"
        if t.kind == "sentencepiece":
            assert all(str(sp._sp.IdToPiece(i)).startswith("▁") for i in starts)


def test_pieces_are_the_vocabulary_strings(tmp_path: Path, hf_path: Path) -> None:
    """``pieces``: what ``convert_ids_to_tokens`` gives (infini-gram's API token strings)."""
    assert load_tokenizer("bytes").pieces([104, 32, 10, 233]) == ["h", " ", "\n", "é"]
    tik = load_tokenizer(_write_tiktoken(tmp_path / "tiny.tiktoken"))
    assert tik.pieces(tik.encode(" the\nhello")) == ["Ġthe", "Ċ", "he", "llo"]
    from tokenizers import Tokenizer as HFTok
    hf, raw = load_tokenizer(hf_path), HFTok.from_file(str(hf_path))
    ids = hf.encode("the lazy dog\n")
    assert hf.pieces(ids) == [raw.id_to_token(i) for i in ids] and "Ġlazy" in "".join(
        hf.pieces(ids))
    sp = load_tokenizer(_train_sentencepiece(tmp_path / "tiny.model"))
    ids = sp.encode("the lazy dog")
    assert sp.pieces(ids) == [sp._sp.IdToPiece(i) for i in ids] and sp.pieces(ids)[0][0] == "▁"
    for t in (tik, hf, sp):
        with pytest.raises(TokenOutOfRangeError):
            t.pieces([t.max_id + 1])


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    for name in ("nope.json", "nope.tiktoken", "nope.model", "nope.vocab"):
        with pytest.raises(TokenizerError, match="does not exist"):
            load_tokenizer(tmp_path / name)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("hello\n")
    with pytest.raises(TokenizerError, match="tokenizer.json") as info:
        load_tokenizer(path)
    assert "vocab.txt" in str(info.value)


@pytest.mark.parametrize("name", ["tokenizer.json", "garbage.tiktoken", "garbage.model"])
def test_garbage_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not a tokenizer \x00\x01\x02")
    with pytest.raises(TokenizerError) as info:
        load_tokenizer(path)
    assert name in str(info.value)


def test_incomplete_tiktoken_file(tmp_path: Path) -> None:
    path = tmp_path / "partial.tiktoken"
    path.write_text("".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(100)))
    with pytest.raises(TokenizerError, match="single-byte"):
        load_tokenizer(path)


def test_bad_spec_dicts(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="unknown tokenizer kind"):
        load_tokenizer({"kind": "word2vec", "file": "x"})
    with pytest.raises(TokenizerError, match="file"):
        load_tokenizer({"kind": "hf"})
    with pytest.raises(TokenizerError, match="does not exist"):
        load_tokenizer({"kind": "hf", "file": "tokenizer.json", "sha256": None}, base_dir=tmp_path)
    with pytest.raises(TokenizerError, match="directory"):
        load_tokenizer(tmp_path)


def test_every_adapter_refuses_lone_surrogates_and_non_int_ids(tmp_path: Path,
                                                               hf_path: Path) -> None:
    """A lone surrogate has no UTF-8 form: every tokenizer raises TokenizerError (the HF and
    sentencepiece libraries raised TypeError/RuntimeError, tiktoken replaced it silently),
    for one text and for a batch; ids that are not ints are an InvalidQueryError."""
    toks = [load_tokenizer("bytes"), load_tokenizer(hf_path),
            load_tokenizer(_write_tiktoken(tmp_path / "tiny.tiktoken")),
            load_tokenizer(_train_sentencepiece(tmp_path / "tiny.model"))]
    for tok in toks:
        for text in ("a\ud800b", "\udfff", "ok \ud83d"):
            with pytest.raises(TokenizerError, match="surrogate"):
                tok.encode(text)
            with pytest.raises(TokenizerError, match="surrogate"):
                tok.encode_batch(["fine", text])
        assert tok.encode_batch(["the cat", "é"]) == [tok.encode("the cat"), tok.encode("é")]
        for bad in ([1.5], ["a"], [[1]], None, 3, np.array([[1, 2]])):
            with pytest.raises(InvalidQueryError):
                tok.decode(bad)
