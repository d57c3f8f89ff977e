"""Text queries with operators (anygram.query.text): syntax, precedence, and the tokenizer-aware
leading space, with tiny tokenizers of every kind trained here."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from anygram import Engine, InvalidQueryError
from anygram.index.build import build_index
from anygram.query.text import has_operators, parse_query, split_query, term_encoder
from anygram.tokenization import load_tokenizer

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, this is a tiny tokenizer test",
    "the cat sat on the mat and the dog sat on the log",
    "a quick brown dog is not a lazy fox",
]


# ---------------------------------------------------------------- syntax


@pytest.mark.parametrize("text,clauses", [
    ("natural language", [["natural language"]]),
    ("a AND b OR c", [["a"], ["b", "c"]]),           # OR binds tighter
    ("a OR b AND c", [["a", "b"], ["c"]]),
    ("a OR b AND c OR d AND e", [["a", "b"], ["c", "d"], ["e"]]),
    ("  a   AND\tb\nOR  c ", [["a"], ["b", "c"]]),    # any whitespace around operators
    ("rock and roll", [["rock and roll"]]),          # lower-case words are text
    ("ANDROID AND BORG", [["ANDROID"], ["BORG"]]),   # operators are whole words
    ("A AND", [["A AND"]]),                          # no space after: text
    ("a AND AND b", [["a"], ["AND b"]]),             # as infini-gram's split(" AND ")
])
def test_split(text, clauses):
    assert split_query(text) == clauses
    assert has_operators(text) == (clauses != [[text.strip()]])


@pytest.mark.parametrize("text", ["a AND ", " OR b", "a OR  ", "a AND   AND b OR ", "", "  "])
def test_empty_terms_are_errors(text):
    with pytest.raises(InvalidQueryError):
        split_query(text)


def test_parse_with_a_function_and_bad_input():
    enc = lambda s: list(s.encode())  # noqa: E731
    assert parse_query("ab AND c OR d", enc) == [[[97, 98]], [[99], [100]]]
    assert parse_query("ab AND c", enc, leading_space=True) == [[[32, 97, 98]], [[32, 99]]]
    with pytest.raises(InvalidQueryError):
        parse_query(b"ab", enc)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        parse_query("a", lambda s: [])
    with pytest.raises(InvalidQueryError):
        term_encoder(enc, leading_space="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        term_encoder(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- tokenizers of each kind


def _hf_bytelevel(path: Path, texts: list[str] = SENTENCES * 3, vocab_size: int = 300,
                  special_tokens: tuple[str, ...] = ()) -> Path:
    """A GPT-2-style byte-level BPE trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(path))
    return path


def _hf_llama_legacy(path: Path, texts: list[str] = SENTENCES * 3, vocab_size: int = 120,
                     special_tokens: tuple[str, ...] = ("<unk>",)) -> Path:
    """Llama-2's tokenizer.json layout: no pre-tokenizer; the normalizer prepends "▁" and
    turns spaces into "▁" (so a prepended space would become a stray "▁" token)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()  # train merges inside words only
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Metaspace()
    tok.save(str(path))
    return path


def _tiktoken(path: Path) -> Path:
    merges = [b"th", b"the", b" t", b" the", b" q", b" qu", b"ick", b" quick", b" b", b"ro"]
    ranks = [bytes([b]) for b in range(256)] + merges
    path.write_text("".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(ranks)))
    return path


def _sentencepiece(path: Path) -> Path:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(SENTENCES * 10), model_writer=model,
                                   vocab_size=80, model_type="bpe", num_threads=1,
                                   minloglevel=2)
    path.write_bytes(model.getvalue())
    return path


MAKERS = {"hf-bytelevel": (_hf_bytelevel, "tokenizer.json"),
          "hf-llama-legacy": (_hf_llama_legacy, "tokenizer.json"),
          "tiktoken": (_tiktoken, "gpt2.tiktoken"),
          "sentencepiece": (_sentencepiece, "tiny.model")}


@pytest.fixture(scope="module", params=["bytes", *MAKERS])
def tokenizer(request, tmp_path_factory):
    if request.param == "bytes":
        return request.param, load_tokenizer("bytes")
    make, name = MAKERS[request.param]
    return request.param, load_tokenizer(make(tmp_path_factory.mktemp(request.param) / name))


def _contains(ids, part):
    return any(ids[i:i + len(part)] == part for i in range(len(ids) - len(part) + 1))


@pytest.mark.parametrize("term", ["quick brown", "lazy dog", "fox", "brown fox jumps", "sat"])
def test_default_encoding_is_the_mid_text_form(tokenizer, term):
    """The property that matters: a term occurring mid-document encodes (by default) to a
    contiguous run of the document's own tokens."""
    name, tok = tokenizer
    encode = term_encoder(tok)
    for text in SENTENCES:
        if f" {term}" in text:
            assert _contains(tok.encode(text), encode(term)), (name, term, text)


def test_default_per_kind(tokenizer):
    name, tok = tokenizer
    auto, term = term_encoder(tok), "quick brown"
    if name == "bytes":
        assert auto(term) == tok.encode(term)
    elif name in ("hf-bytelevel", "tiktoken"):
        assert auto(term) == tok.encode(" " + term)  # GPT-2 style: "Ġquick"
    else:
        assert auto(term) == tok.encode(term)  # the tokenizer adds "▁" itself
        if name == "hf-llama-legacy":
            assert tok.encode(" " + term) != tok.encode(term)  # why prepending is wrong here
    assert term_encoder(tok, leading_space=False)(term) == tok.encode(term)
    assert term_encoder(tok, leading_space=True)(term) == tok.encode(" " + term)


def test_engine_text_cnf_with_a_bpe(tmp_path):
    tok_path = _hf_bytelevel(tmp_path / "tokenizer.json")
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in SENTENCES))
    build_index([tmp_path / "c.jsonl"], tmp_path / "idx", tokenizer=tok_path, progress=False)
    eng = Engine.open(tmp_path / "idx")
    # " lazy" and " fox" occur mid-text: found with the default leading space, not without.
    assert eng.count_cnf("lazy AND fox", max_diff_tokens=10).count == 2
    assert eng.count_cnf("lazy AND fox", max_diff_tokens=10, leading_space=False).count == 0
    assert eng.count_cnf("quick brown AND dog OR fox", max_diff_tokens=10).count == 2
    assert eng.count_cnf([["quick brown"], ["dog", "fox"]], max_diff_tokens=10).count == 2
    assert eng.count_docs_with_all("the AND dog").count == 2
    # At a document's start there is no space: "the" starts two documents, " the" does not.
    assert eng.count_cnf("the", leading_space=False).count == 2
