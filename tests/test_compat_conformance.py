"""Conformance: infini-gram client code, run unchanged, gets infini-gram's answers.

The client calls below are written from public clients of infini-gram 2.6.0, each test naming
its source: the package docs (``docs/source/pkg.rst``), the package's test script
(``pkg/test/engine_test.py``), scripts that reach into ``engine.engine``, OLMoTrace's processor
and attribution job (allenai/infinigram-api: ``InfiniGramEngineDiff``,
``get_docs_by_ptrs_2_grouped``), and the API payloads of infini-gram's server test
(``infini_gram/api_server_test.py``) and API docs (``docs/source/api.rst``). Each call runs on
infini-gram's own engine and on ``anygram.compat``'s, over the same index built here by
anygram's builder (three tokenizers: a GPT-2-style byte-level BPE in three shards, a
Llama-style BPE, UTF-8 bytes in two shards); each payload goes to ``anygram serve``'s
``POST /`` and to ``tests/reference_infini_gram_api.py``'s model of infini-gram's server over
infini-gram's engine.

An answer must be identical to infini-gram's, or differ only as a row of docs/compat.md
says (its id), checked by a judge that verifies the cause: e.g. a CNF answer that equals
``tests/reference.py``'s exact twin and lacks, of infini-gram's, only matches it drops at a
document edge. The tally (identical / each documented difference / different) is printed
with ``-s``, and written as JSON to ``$ANYGRAM_CONFORMANCE_TALLY`` when set.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import reference as ref
from reference_infini_gram_api import InfiniGramApiModel, ModelTokenizer

infini = pytest.importorskip(
    "infini_gram.engine",
    reason="infini-gram 2.6.0 is not importable (no wheel for this Python): the conformance "
           "suite compares anygram.compat with it")
tokenizers = pytest.importorskip("tokenizers")
pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import anygram.compat as compat  # noqa: E402
from anygram import Engine, build_index  # noqa: E402
from anygram.server import create_app  # noqa: E402
from anygram.tokenization import load_tokenizer  # noqa: E402

COMPAT_DOC = Path(__file__).resolve().parents[1] / "docs" / "compat.md"

# Texts of infini-gram's examples, spread through the corpus (so that they sit in every shard,
# next to documents that end or start with their partners).
PUBLIC = [
    "natural language processing is a field of artificial intelligence.",
    "Deep learning changed natural language processing; deep learning needs data.",
    "The United States and the government of the United States.",
    "the government said that the United States would act on deep learning.",
    "I love natural language processing and deep learning.",
    "natural language processing",
    "deep learning models for natural language processing",
    "machine learning and artificial intelligence, natural language processing.",
    "this is that, and that is this.",
    "University of Washington: natural language processing and machine learning.",
]
TAKEN_DOWN = [0, 4]  # PUBLIC documents also in the diff index of OLMoTrace's engine


# ----------------------------------------------------------------------------- the tally

TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    counts = dict(sorted(TALLY.items()))
    print("\nconformance tally:", json.dumps(counts, indent=1))
    out = os.environ.get("ANYGRAM_CONFORMANCE_TALLY")
    if out:
        Path(out).write_text(json.dumps(counts, indent=1) + "\n")


def plain(x: Any) -> Any:
    """Comparable data: result objects (infini-gram's pybind ones, compat's dataclasses) as
    ``{"type": name, **fields}``, containers element by element."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(plain(v) for v in x)
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    fields = {a: plain(getattr(x, a)) for a in dir(x)
              if not a.startswith("_") and not callable(getattr(x, a))}
    return {"type": re.sub(r"_U(8|16|32)$", "", type(x).__name__), **fields}


def _run(fn: Callable[[], Any]) -> Any:
    try:
        return plain(fn())
    except Exception as e:  # a crash is an answer too (it counts as different)
        return {"raised": type(e).__name__, "message": str(e)[:200]}


Judge = Callable[[Any, Any], str | None]


class Checks:
    """Collects the verdicts of one test's calls; :meth:`done` fails on any difference that
    no judge explained."""

    def __init__(self, surface: str) -> None:
        self.surface = surface
        self.problems: list[str] = []

    def verdict(self, label: str, ours: Any, theirs: Any, judge: Judge | None = None) -> str:
        if ours == theirs:
            v = "identical"
        else:
            v = "different"
            if judge is not None and "raised" not in (ours if isinstance(ours, dict) else {}):
                try:
                    v = judge(ours, theirs) or "different"
                except Exception as e:  # not explained (an AssertionError, or a bad shape)
                    v = "different"
                    label += f" (judge: {type(e).__name__}: {e})"
        TALLY[f"{self.surface}: {v}"] += 1
        if v == "different":
            self.problems.append(f"{label}\n  ours:   {str(ours)[:400]}\n"
                                 f"  theirs: {str(theirs)[:400]}")
        return v

    def call(self, label: str, side: Side, fn: Callable[[Any], Any],
             judge: Judge | None = None, *, diff: bool = False) -> str:
        ig, ours = (side.ig_diff, side.ours_diff) if diff else (side.ig, side.ours)
        return self.verdict(label, _run(lambda: fn(ours)), _run(lambda: fn(ig)), judge)

    def done(self) -> None:
        assert not self.problems, "\n".join(self.problems)


# ----------------------------------------------------------------------------- the indexes


def _texts() -> list[str]:
    from test_analysis import _docstrings
    texts = _docstrings()[:500]
    step = len(texts) // len(PUBLIC)
    for i, t in enumerate(PUBLIC):
        texts.insert(i * step + 3 * i, t)
    return texts


def _train(texts: list[str], path: Path, family: str) -> Path:
    """A GPT-2-style byte-level BPE, or a BPE in Llama-2's ``tokenizer.json`` layout."""
    from test_query_text import _hf_bytelevel, _hf_llama_legacy
    if family == "gpt2":
        return _hf_bytelevel(path, texts, 900, ("<|endoftext|>",))
    return _hf_llama_legacy(path, texts, 700, ("<unk>", "<s>", "</s>"))


@dataclass
class Side:
    """One index with both engines (and the diff engines), its tokenizer and its tokens."""

    name: str
    family: str
    directory: Path
    ig: Any
    ours: Any
    ig_diff: Any
    ours_diff: Any
    tok: Any  # anygram's tokenizer of the index
    model: InfiniGramApiModel
    corpus: list[list[list[int]]]  # documents' tokens, by anygram shard
    width: int

    def enc(self, text: str) -> list[int]:
        """Token ids as a client script gets them (``tokenizer.encode(text)``)."""
        return list(self.tok.encode(text))


@pytest.fixture(scope="module")
def sides(tmp_path_factory) -> dict[str, Side]:
    root = tmp_path_factory.mktemp("conformance")
    texts = _texts()
    data = root / "corpus.jsonl"
    data.write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    hidden = root / "hidden.jsonl"
    hidden.write_text("".join(json.dumps({"text": PUBLIC[i], "n": -i}) + "\n"
                              for i in TAKEN_DOWN))
    out: dict[str, Side] = {}
    for name, family, shards in (("gpt2", "gpt2", 3), ("llama", "llama", 1),
                                 ("bytes", "bytes", 2)):
        spec: Any = "bytes" if family == "bytes" else _train(texts, root / f"{name}.json",
                                                             family)
        directory = root / name
        total = sum(len(load_tokenizer(spec).encode(t)) + 1 for t in texts)
        build_index(data, directory, tokenizer=spec, shard_tokens=total // shards + 50,
                    progress=False, workers=1)
        build_index(hidden, root / f"{name}_hidden", tokenizer=spec, progress=False, workers=1)
        tok = load_tokenizer(spec)
        native = Engine.open(directory)
        assert (native.num_shards > 1) == (shards > 1)
        bow = root / f"{name}_bow.txt"
        bow.write_text("".join(f"{i}\n" for i in tok.word_start_ids().tolist()))
        eos = tok.eos_id if tok.eos_id is not None else 0
        kw = dict(eos_token_id=eos, vocab_size=tok.max_id + 1 if family != "bytes" else 255,
                  token_dtype=native.token_dtype, ds_prefetch_depth=0, sa_prefetch_depth=0,
                  od_prefetch_depth=0, bow_ids_path=str(bow), precompute_unigram_logprobs=True)
        diff_args = (str(directory), str(root / f"{name}_hidden"))
        ours_diff_cls = getattr(compat, "InfiniGramEngineDiff", None)
        hf = None if family == "bytes" else tokenizers.Tokenizer.from_file(str(spec))
        ig = infini.InfiniGramEngine(str(directory), **kw)
        out[name] = Side(
            name=name, family=family, directory=directory, ig=ig,
            ours=compat.InfiniGramEngine(str(directory), **kw),
            ig_diff=infini.InfiniGramEngineDiff(*diff_args, **kw),
            ours_diff=None if ours_diff_cls is None else ours_diff_cls(*diff_args, **kw),
            tok=tok, model=InfiniGramApiModel(name, ig, ModelTokenizer(family, hf)),
            corpus=[[native.get_doc(native.doc_id(s, i)).token_ids
                     for i in range(native.shards[s].num_docs)]
                    for s in range(native.num_shards)],
            width=native.token_width)
    return out


@pytest.fixture(scope="module")
def client(sides: dict[str, Side]) -> TestClient:
    with TestClient(create_app({n: Engine.open(s.directory) for n, s in sides.items()}),
                    base_url="http://localhost") as c:
        yield c


SIDES = ["gpt2", "llama", "bytes"]


# ----------------------------------------------------------------------------- judges
# Each returns the docs/compat.md id of the difference it verified (an AssertionError, or
# None: not explained).


def _ids(d: Any) -> Any:
    """A JSON object's token-id keys back as ints."""
    return {int(k): v for k, v in d.items()}


def judge_ntd(side: Side, prompt: list[int], suffix: bool = False) -> Judge:
    """ntd / infgram_ntd: ours is the exact distribution (tests/reference.py), where infini-gram
    samples above ``max_support`` or collapses to ``{eos: prompt_cnt}`` at a shard's end."""
    def judge(ours: Any, theirs: Any) -> str | None:
        n = ref.naive_suffix_len(side.corpus, prompt) if suffix else len(prompt)
        total, nxt, end = ref.naive_ntd(side.corpus, prompt[len(prompt) - n:])
        eos = side.ours.eos_token_id
        counts = dict(nxt)
        if end:
            counts[eos] = counts.get(eos, 0) + end
        got = {t: e["cont_cnt"] for t, e in _ids(ours["result_by_token_id"]).items()}
        assert got == counts and ours["prompt_cnt"] == total and not ours["approx"], "not exact"
        if "token" in next(iter(ours["result_by_token_id"].values()), {}):
            assert {t: e["token"] for t, e in _ids(ours["result_by_token_id"]).items()} == {
                t: side.model.tok.tokens([t])[0].replace("Ġ", " ") for t in got}, "tokens"
        rest = {k: v for k, v in ours.items() if k not in ("result_by_token_id", "approx")}
        assert rest == {k: v for k, v in theirs.items()
                        if k not in ("result_by_token_id", "approx")}, "other fields"
        if theirs["approx"]:
            return "ntd-exact"
        collapsed = _ids(theirs["result_by_token_id"])
        assert list(collapsed) == [eos] and collapsed[eos]["cont_cnt"] == total, "not explained"
        return "ntd-end-of-shard"
    return judge


def _cnf_of(side: Side, payload_cnf: Any) -> list[list[list[int]]]:
    return payload_cnf if isinstance(payload_cnf[0], list) else [[payload_cnf]]


def _subsequence(short: list[int], long: list[int]) -> bool:
    it = iter(long)
    return all(x in it for x in short)


def judge_cnf(side: Side, cnf: list[list[list[int]]], d: int = 100, cap: int = 50000) -> Judge:
    """count_cnf / find_cnf: ours equals the exact twin (tests/reference.py) unless sampled;
    infini-gram's answer differs by its cap, its chain over 3+ clauses, its double count of a
    phrase that extends another of the same clause, or by the matches it drops at document
    edges (its pointers a subsequence of ours)."""
    def judge(ours: Any, theirs: Any) -> str | None:
        n_ours = ours.get("count", ours.get("cnt"))
        n_theirs = theirs.get("count", theirs.get("cnt"))
        rest = ("count", "cnt", "approx", "ptrs_by_shard")
        assert {k: v for k, v in ours.items() if k not in rest} == {
            k: v for k, v in theirs.items() if k not in rest}, "other fields"
        if not ours["approx"]:
            count, ptrs = ref.compat_find_cnf(side.corpus, cnf, d, side.width)
            assert n_ours == count, f"ours {n_ours} is not exact ({count})"
            if "ptrs_by_shard" in ours:
                order = side.ours._shard_order
                assert ours["ptrs_by_shard"] == ([ptrs[i] for i in order] if ptrs else [])
        if theirs["approx"]:
            return "cnf-cap"
        if any(p != q and q[:len(p)] == p for c in cnf for p in c for q in c):
            assert n_theirs > n_ours, "prefix phrases count more in infini-gram"
            return "cnf-prefix"
        if len(cnf) >= 3:
            return "cnf-chain"
        if len(cnf) == 1:
            # One clause above the cap's share of a shard: subsampled, yet "exact".
            assert any(sum(ref.naive_count([sh], p) for p in cnf[0])
                       > cap // len(side.corpus) for sh in side.corpus), "not capped"
            return "cnf-cap"
        mine = side.ours.find_cnf(cnf, cap, d)["ptrs_by_shard"]
        lost = side.ig.find_cnf(cnf, cap, d)["ptrs_by_shard"]
        assert n_theirs < n_ours and all(_subsequence(t, o) for t, o in zip(lost, mine)), \
            "infini-gram's matches are not ours minus some"
        return "cnf-edge"
    return judge


def _windows(side: Side, pairs: list[tuple[int, int]], disp: int, by_rank: bool) -> list[Any]:
    """infini-gram's windows (compat's where infini-gram refuses an odd u8 pointer)."""
    out = []
    for s, x in pairs:
        w = (side.ig.get_doc_by_rank(s=s, rank=x, max_disp_len=disp) if by_rank else
             side.ig.get_doc_by_ptr(s=s, ptr=x, max_disp_len=disp))
        if "error" in w:
            w = side.ours.get_doc_by_ptr(s, x, disp)
        out.append(w)
    return out


def judge_search(side: Side, query: Any, maxnum: int, disp: int, *, d: int = 100,
                 cap: int = 50000, http: bool = False) -> Judge:
    """search_docs(_cnf): distinct seeded hits, each a window infini-gram could have drawn
    (at an occurrence, or at a match's pointer), ``idxs`` their indices; infini-gram draws
    with replacement. With ``http``, the ``message`` and each document's ``spans`` are checked
    as infini-gram's server builds them."""
    is_cnf = isinstance(query[0], list) if query else False

    def judge(ours: Any, theirs: Any) -> str | None:
        keys = ("idxs", "documents", "message", "cnt", "approx")
        assert {k: v for k, v in ours.items() if k not in keys} == {
            k: v for k, v in theirs.items() if k not in keys}, "other fields"
        verdict = "search-sampling"
        if is_cnf:
            cnt_keys = ("cnt", "approx")
            o, t = ({k: x[k] for k in cnt_keys} for x in (ours, theirs))
            if o != t:
                verdict += "+" + judge_cnf(side, query, d, cap)(o, t)  # type: ignore[operator]
            ptrs = side.ours.find_cnf(query, cap, d)["ptrs_by_shard"]
            pairs = [(s, p) for s, ps in enumerate(ptrs) for p in ps]
            possible = _windows(side, pairs, disp, by_rank=False)
        else:
            assert (ours["cnt"], ours["approx"]) == (theirs["cnt"], theirs["approx"]), "count"
            segs = side.ig.find(input_ids=query)["segment_by_shard"]
            pairs = [(s, r) for s, (a, b) in enumerate(segs) for r in range(a, b)]
            possible = _windows(side, pairs, disp, by_rank=True)
        docs = ours["documents"]
        assert len(docs) == min(maxnum, len(pairs)) and len(set(ours["idxs"])) == len(docs)
        assert all(0 <= i < max(ours["cnt"], 1) for i in ours["idxs"]), "idxs"
        for doc in docs:
            window = {k: v for k, v in doc.items() if k != "spans"}
            assert plain(window) in [plain(w) for w in possible], "not a possible window"
            if http:
                assert doc["spans"] == plain([list(x) for x in side.model.spans(
                    doc["token_ids"], query if is_cnf else [[query]])]), "spans"
        if http and ours["cnt"]:
            assert ours["message"] == (
                f"{'Approximately ' if ours['approx'] else ''}{ours['cnt']} occurrences "
                f"found. Displaying the documents of occurrences #{ours['idxs']}"), "message"
        return verdict
    return judge


def judge_error(key: str) -> Judge:
    """Both refuse the call (the messages may differ)."""
    def judge(ours: Any, theirs: Any) -> str | None:
        assert "error" in ours and "error" in theirs, "not both errors"
        return key
    return judge


def judge_separator(ours: Any, theirs: Any) -> str | None:
    """The separator id is refused here; infini-gram matches the separators themselves."""
    assert set(ours) == {"error"} and "error" not in theirs
    return "separator-id"


# ----------------------------------------------------------------------------- engine calls


@pytest.mark.parametrize("name", SIDES)
def test_package_docs_examples(sides: dict[str, Side], name: str) -> None:
    """infini-gram's ``docs/source/pkg.rst``: every example, in order."""
    side = sides[name]
    c = Checks("engine")
    enc = side.enc
    nlp, ai, dl = enc("natural language processing"), enc("artificial intelligence"), \
        enc("deep learning")
    this, that = enc("this"), enc("that")
    c.call("count nlp", side, lambda e: e.count(input_ids=nlp))
    c.call("count []", side, lambda e: e.count(input_ids=[]))
    for label, cnf, kw in (
            ("nlp OR ai", [[nlp, ai]], {}),
            ("nlp AND dl", [[nlp], [dl]], {}),
            ("(nlp OR ai) AND dl", [[nlp, ai], [dl]], {}),
            ("nlp AND dl, d=1000", [[nlp], [dl]], {"max_diff_tokens": 1000}),
            ("this AND that", [[this], [that]], {}),
            ("this AND that, cap 500000", [[this], [that]], {"max_clause_freq": 500000}),
            ("this AND that, cap 2000000", [[this], [that]], {"max_clause_freq": 2000000}),
            ("this AND that, cap 20", [[this], [that]], {"max_clause_freq": 20}),
            # Beyond the page: shapes the API docs allow (4 clauses of 4 terms).
            ("natural OR nlp", [[enc("natural"), nlp]], {}),
            ("nlp AND dl AND ai", [[nlp], [dl], [ai]], {}),
            ("this, cap 3", [[this]], {"max_clause_freq": 3})):
        c.call(f"count_cnf {label}", side, lambda e, cnf=cnf, kw=kw: e.count_cnf(cnf=cnf, **kw),
               judge_cnf(side, cnf, kw.get("max_diff_tokens", 100),
                         kw.get("max_clause_freq", 50000)))
    c.call("count this", side, lambda e: e.count(input_ids=this))
    c.call("prob nlp", side, lambda e: e.prob(prompt_ids=nlp[:-1], cont_id=nlp[-1]))
    love = enc("I love natural language processing")
    c.call("prob unseen prompt", side, lambda e: e.prob(prompt_ids=love[:-1], cont_id=love[-1]))
    nl = enc("natural language")
    c.call("ntd natural language", side, lambda e: e.ntd(prompt_ids=nl), judge_ntd(side, nl))
    c.call("ntd unseen", side, lambda e: e.ntd(prompt_ids=love[:-1]))
    c.call("ntd []", side, lambda e: e.ntd(prompt_ids=[]), judge_ntd(side, []))
    c.call("infgram_prob", side, lambda e: e.infgram_prob(prompt_ids=love[:-1],
                                                          cont_id=love[-1]))
    il = enc("I love natural language")
    c.call("infgram_ntd max_support=10", side,
           lambda e: e.infgram_ntd(prompt_ids=il, max_support=10), judge_ntd(side, il, True))
    c.call("find nlp", side, lambda e: e.find(input_ids=nlp))
    segs = side.ig.find(input_ids=nlp)["segment_by_shard"]
    s0 = next(s for s, (a, b) in enumerate(segs) if b > a)
    c.call("get_doc_by_rank", side,
           lambda e: e.get_doc_by_rank(s=s0, rank=segs[s0][0], max_disp_len=10))
    c.call("every document by rank", side, lambda e: [
        e.get_doc_by_rank(s=s, rank=r) for s, (a, b) in
        enumerate(e.find(input_ids=nlp)["segment_by_shard"]) for r in range(a, b)])
    cnf = [[nlp], [dl]]
    c.call("find_cnf nlp AND dl", side, lambda e: e.find_cnf(cnf=cnf), judge_cnf(side, cnf))
    ptrs = [(s, p) for s, ps in enumerate(side.ig.find_cnf(cnf=cnf)["ptrs_by_shard"])
            for p in ps]
    c.call("get_doc_by_ptr", side,
           lambda e: e.get_doc_by_ptr(s=ptrs[0][0], ptr=ptrs[0][1], max_disp_len=20),
           judge_odd_pointer)

    def every_doc_by_ptr(e: Any) -> list[Any]:
        found = e.find_cnf(cnf=cnf)
        return [e.get_doc_by_ptr(s=s, ptr=p) for s, ps in enumerate(found["ptrs_by_shard"])
                for p in ps]
    c.call("every document by pointer", side, every_doc_by_ptr, judge_doc_lists(side, cnf))
    c.done()


def judge_odd_pointer(ours: Any, theirs: Any) -> str | None:
    """infini-gram 2.6.0 checks ``ptr % 2 == 0`` whatever the token width: it refuses the odd
    pointers of a u8 index (its own find_cnf gives them)."""
    assert "error" in theirs and "even" in theirs["error"] and "error" not in ours
    return "ptr-alignment"


def judge_doc_lists(side: Side, cnf: list[list[list[int]]]) -> Judge:
    """The documents at every find_cnf pointer: infini-gram's a subsequence of ours (the
    matches it drops at document edges), or its odd-pointer refusals on u8."""
    def judge(ours: Any, theirs: Any) -> str | None:
        keys = []
        if any("error" in t for t in theirs):
            assert side.width == 1
            theirs = [t for t in theirs if "error" not in t]
            keys.append("ptr-alignment")
        if theirs != ours:
            assert _subsequence([json.dumps(t) for t in theirs], [json.dumps(o) for o in ours])
            keys.append("cnf-edge")
        return "+".join(keys)
    return judge


@pytest.mark.parametrize("name", SIDES)
def test_package_test_script(sides: dict[str, Side], name: str) -> None:
    """infini-gram's ``pkg/test/engine_test.py`` (its ids of another vocabulary included)."""
    side = sides[name]
    c = Checks("engine")
    ids = side.enc("natural language processing")
    c.call("count", side, lambda e: e.count(input_ids=ids))
    c.call("prob", side, lambda e: e.prob(prompt_ids=ids[:-1], cont_id=ids[-1]))
    c.call("ntd", side, lambda e: e.ntd(prompt_ids=ids[:-1]), judge_ntd(side, ids[:-1]))
    c.call("infgram_prob", side,
           lambda e: e.infgram_prob(prompt_ids=[3234, 4324] + ids[:-1], cont_id=ids[-1]))
    c.call("infgram_ntd", side, lambda e: e.infgram_ntd(prompt_ids=[3234, 4324] + ids[:-1]),
           judge_ntd(side, [3234, 4324] + ids[:-1], True))
    c.call("search_docs", side, lambda e: e.search_docs(input_ids=ids),
           judge_search(side, ids, 1, 1000))
    c.call("search_docs maxnum=5", side,
           lambda e: e.search_docs(input_ids=side.enc(" the"), maxnum=5, max_disp_len=30),
           judge_search(side, side.enc(" the"), 5, 30))
    c.call("search_docs []", side, lambda e: e.search_docs(input_ids=[]),
           judge_empty_search)
    sep = (1 << (8 * side.width)) - 1
    c.call("count separator", side, lambda e: e.count(input_ids=[sep]), judge_separator)
    c.done()


def judge_empty_search(ours: Any, theirs: Any) -> str | None:
    """The empty query matches every position; searching it is refused here."""
    assert set(ours) == {"error"} and theirs["cnt"] > 0
    return "search-empty"


@pytest.mark.parametrize("name", SIDES)
def test_scripts_reaching_into_the_cpp_engine(sides: dict[str, Side], name: str) -> None:
    """Scripts call infini-gram's C++ engine object, ``engine.engine``, directly."""
    side = sides[name]
    c = Checks("engine")
    ids = side.enc("natural language processing")
    for label, fn in (
            ("get_total_doc_cnt", lambda e: e.engine.get_total_doc_cnt()),
            ("get_num_shards", lambda e: e.engine.get_num_shards()),
            ("get_tok_cnt", lambda e: [e.engine.get_tok_cnt(s=s)
                                       for s in range(e.engine.get_num_shards())]),
            ("get_ds_size", lambda e: [e.engine.get_ds_size(s=s)
                                       for s in range(e.engine.get_num_shards())]),
            ("count", lambda e: e.engine.count(input_ids=ids).count),
            ("find", lambda e: e.engine.find(input_ids=ids)),
            ("prob", lambda e: e.engine.prob(prompt_ids=ids[:-1], cont_id=ids[-1])),
            ("ntd", lambda e: e.engine.ntd(prompt_ids=ids[:1], max_support=1000)),
            ("infgram_prob", lambda e: e.engine.infgram_prob(prompt_ids=ids, cont_id=ids[0])),
            ("find_cnf", lambda e: e.engine.find_cnf(cnf=[[ids[:1]], [ids[-1:]]],
                                                     max_clause_freq=50000,
                                                     max_diff_tokens=20)),
            ("get_doc_by_ix", lambda e: e.engine.get_doc_by_ix(doc_ix=3, max_disp_len=12)),
            ("get_docs_by_ranks", lambda e: e.engine.get_docs_by_ranks(
                list_of_s_and_rank=[(0, 5), (0, 9)], max_disp_len=8)),
            ("get_docs_by_ixs_2", lambda e: e.engine.get_docs_by_ixs_2(requests=[(1, 4)])),
            ("creativity", lambda e: e.engine.creativity(input_ids=ids)),
            ("compute_unigram_counts", lambda e: e.compute_unigram_counts(s=0)),
            ("engine.compute_unigram_counts", lambda e: e.engine.compute_unigram_counts(s=0)),
            ("get_total_doc_cnt (wrapper)", lambda e: e.get_total_doc_cnt())):
        judges = {"ntd": judge_ntd(side, ids[:1]),
                  "find_cnf": judge_cnf(side, [[ids[:1]], [ids[-1:]]], 20)}
        c.call(label, side, fn, judges.get(label))

    def shards(e: Any) -> Any:
        got = e.get_new_shards_by_index_dir()
        return {d: [(s.tok_cnt, s.ds_size, s.ptr_size, s.doc_cnt, s.mt_size) for s in ss]
                for d, ss in got.items()}
    c.call("get_new_shards_by_index_dir", side, shards)
    c.done()


# ----------------------------------------------------------------------------- OLMoTrace


def _document(side: Side, d: dict[str, Any]) -> dict[str, Any]:
    """OLMoTrace's ``Document`` of a ``DocResult`` (processor.py): metadata parsed, text
    decoded."""
    return {"document_index": d["doc_ix"], "document_length": d["doc_len"],
            "display_length": d["disp_len"], "needle_offset": d["needle_offset"],
            "metadata": json.loads(d["metadata"]), "token_ids": d["token_ids"],
            "text": side.tok.decode(d["token_ids"]), "blocked": d["blocked"]}


def _search_documents(side: Side, e: Any, query: str, max_ctx: int, page: int,
                      page_size: int) -> dict[str, Any]:
    """OLMoTrace's ``search_documents``: ``find``, then one page of occurrences in
    suffix-array order, shard after shard, fetched with ``get_docs_by_ranks_2``."""
    ids = side.enc(query)
    found = e.find(input_ids=ids)
    segs = found["segment_by_shard"]
    wanted = []
    for k in range(page * page_size, min((page + 1) * page_size, found["cnt"])):
        s = 0
        while k >= segs[s][1] - segs[s][0]:
            k -= segs[s][1] - segs[s][0]
            s += 1
        wanted.append((s, segs[s][0] + k, len(ids), max_ctx))
    docs = e.get_docs_by_ranks_2(requests=wanted)
    return {"total": found["cnt"], "documents": [_document(side, d) for d in docs]}


def _cut(token_ids: list[int], offset: int, length: int, ctx: int) -> tuple[int, int, list[int]]:
    """OLMoTrace's ``cut_document``: at most ``ctx`` tokens each side of the span."""
    if offset > ctx:
        token_ids, offset = token_ids[offset - ctx:], ctx
    if len(token_ids) - offset - length > ctx:
        token_ids = token_ids[:offset + length + ctx]
    return len(token_ids), offset, token_ids


def _attribution_job(side: Side, e: Any, text: str) -> list[dict[str, Any]]:
    """OLMoTrace's attribution job (attribution_handler.py, get_documents.py): attribute the
    text on the takedown engine, keep the longest spans (density 5%), sample at most 10 of
    each span's pointers (``random.seed(42)``), fetch them with ``get_docs_by_ptrs_2_grouped``
    (context 250), cut them to 100 and 40 tokens."""
    ids = side.enc(text)
    spans = e.attribute(input_ids=ids, delim_ids=side.enc("."), min_len=1, max_cnt=10,
                        enforce_bow=True)["spans"]
    keep = math.ceil(len(ids) * 0.05)
    spans = sorted(sorted(spans, key=lambda sp: sp["length"], reverse=True)[:keep],
                   key=lambda sp: sp["l"])
    requests = []
    for sp in spans:
        docs = sp["docs"]
        if len(docs) > 10:
            random.seed(42)
            docs = random.sample(docs, 10)
        requests.append({"docs": docs, "span_ids": ids[sp["l"]:sp["r"]],
                         "needle_len": sp["length"], "max_ctx_len": 250})
    grouped = e.get_docs_by_ptrs_2_grouped(requests=requests)
    out = []
    for sp, docs in zip(spans, grouped):
        out.append({**{k: sp[k] for k in ("l", "r", "length", "count", "unigram_logprob_sum")},
                    "documents": [{**_document(side, d), "long": _cut(
                        d["token_ids"], d["needle_offset"], sp["length"], 100),
                        "snippet": _cut(d["token_ids"], d["needle_offset"], sp["length"], 40)}
                        for d in docs]})
    return out


def test_olmotrace_processor_and_attribution(sides: dict[str, Side]) -> None:
    """allenai/infinigram-api: its processor's calls on ``InfiniGramEngineDiff`` (a main index
    and a takedown index), and the attribution job end to end."""
    side = sides["gpt2"]
    c = Checks("engine")
    found = side.ig.find(input_ids=side.enc(" natural language processing"))
    s, (lo, hi) = next((s, g) for s, g in enumerate(found["segment_by_shard"]) if g[1] > g[0])
    ptr = side.ig.find_cnf(cnf=[[side.enc(" deep learning")]])["ptrs_by_shard"][s][0]
    calls: list[tuple[str, Callable[[Any], Any]]] = [
        ("count_n_gram", lambda e: e.count(input_ids=side.enc(" natural language"))),
        ("get_document_by_rank", lambda e: _document(side, e.get_doc_by_rank_2(
            s=s, rank=lo, needle_len=3, max_ctx_len=20))),
        ("get_documents_by_ranks", lambda e: [_document(side, d) for d in e.get_docs_by_ranks_2(
            requests=[(s, r, 3, 10) for r in range(lo, hi)])]),
        ("get_document_by_pointer", lambda e: _document(side, e.get_doc_by_ptr_2(
            s=s, ptr=ptr, needle_len=2, max_ctx_len=15))),
        ("get_document_by_index", lambda e: _document(side, e.get_doc_by_ix_2(
            doc_ix=7, max_ctx_len=30))),
        ("get_documents_by_indexes", lambda e: [_document(side, d) for d in e.get_docs_by_ixs_2(
            requests=[(0, 5), (9, 50), (30, 0)])]),
        ("search_documents page 0", lambda e: _search_documents(
            side, e, " natural language processing", 40, 0, 3)),
        ("search_documents page 1", lambda e: _search_documents(
            side, e, " natural language processing", 40, 1, 3)),
        ("search_documents past the end", lambda e: _search_documents(
            side, e, " natural language processing", 40, 50, 3)),
    ]
    for label, fn in calls:
        c.call(label, side, fn, diff=True)
    # A model's answer that repeats corpus text, a taken-down document's text among it.
    answer = " ".join([PUBLIC[1], PUBLIC[TAKEN_DOWN[1]], _texts()[40][:300], PUBLIC[2]])
    c.call("attribution job", side, lambda e: _attribution_job(side, e, answer), diff=True)
    c.call("creativity (takedown engine)", side,
           lambda e: e.creativity(input_ids=side.enc(answer)), diff=True)
    c.call("grouped fetch of a taken-down span", side, lambda e: [
        [_document(side, d) for d in g] for g in e.get_docs_by_ptrs_2_grouped(requests=[{
            "docs": [{"s": s, "ptr": p} for s, ps in enumerate(e.find_cnf(
                cnf=[[side.enc(PUBLIC[TAKEN_DOWN[1]])]])["ptrs_by_shard"]) for p in ps],
            "span_ids": side.enc(PUBLIC[TAKEN_DOWN[1]]), "needle_len": 4,
            "max_ctx_len": 10}])], diff=True)
    c.done()


# ----------------------------------------------------------------------------- POST /


def _payloads(side: Side) -> list[tuple[dict[str, Any], Any]]:
    """infini-gram's ``api_server_test.py`` payloads, then the API docs' examples and one of
    each other query type, each with its judge (None: must be identical)."""
    n = side.name
    m = side.model
    out: list[tuple[dict[str, Any], Any]] = []

    def add(payload: dict[str, Any], judge: Any = None) -> None:
        out.append((payload, judge))

    def cnf(text: str) -> list[list[list[int]]]:
        return [[m.tok.tokenize(t) for t in p.split(" OR ")] for p in text.split(" AND ")]

    nlp_or_ai = "natural language processing OR artificial intelligence"
    for q in ("", "natural language processing", "fhsdkcdshfsdf", nlp_or_ai,
              "natural language processing AND deep learning",
              nlp_or_ai + " AND deep learning"):
        add({"corpus": n, "query_type": "count", "query": q},
            judge_cnf(side, cnf(q)) if " AND " in q or " OR " in q else None)
    for q in ("natural language processing", "natural language apple",
              "fhsdkcdshfsdf processing"):
        add({"corpus": n, "query_type": "prob", "query": q})
    for q in ("natural language", ""):
        add({"corpus": n, "query_type": "ntd", "query": q},
            judge_ntd(side, m.tok.tokenize(q)))
    q = "fhsdkcdshfsdf natural language processing"
    add({"corpus": n, "query_type": "infgram_prob", "query": q})
    q = "fhsdkcdshfsdf natural language"
    add({"corpus": n, "query_type": "infgram_ntd", "query": q},
        judge_ntd(side, m.tok.tokenize(q), True))
    for q in ("", "natural language processing", "fhsdkcdshfsdf", nlp_or_ai,
              "natural language processing AND deep learning",
              nlp_or_ai + " AND deep learning"):
        query: Any = cnf(q) if " AND " in q or " OR " in q else m.tok.tokenize(q)
        add({"corpus": n, "query_type": "search_docs", "maxnum": 1, "query": q},
            judge_empty_http if not q else judge_search(side, query, 1, 1000, http=True))
    # docs/source/api.rst
    add({"index": n, "query_type": "count", "query": "University of Washington"})
    nlp = m.tok.tokenize("natural language processing")
    add({"index": n, "query_type": "count", "query_ids": nlp})
    add({"index": n, "query_type": "count", "query_ids": [[nlp]]}, judge_cnf(side, [[nlp]]))
    big = "natural language processing OR artificial intelligence AND deep learning OR " \
          "machine learning"
    add({"index": n, "query_type": "count", "query": big}, judge_cnf(side, cnf(big)))
    add({"index": n, "query_type": "count", "query_ids": cnf(big), "max_diff_tokens": 1000},
        judge_cnf(side, cnf(big), 1000))
    add({"index": n, "query_type": "count", "query": "this AND that", "max_clause_freq": 5},
        judge_cnf(side, cnf("this AND that"), 100, 5))
    add({"index": n, "query_type": "ntd", "query": "natural", "max_support": 10},
        judge_ntd(side, m.tok.tokenize("natural")))
    add({"index": n, "query_type": "infgram_ntd", "query": "I love natural language",
         "max_support": 10}, judge_ntd(side, m.tok.tokenize("I love natural language"), True))
    add({"index": n, "query_type": "infgram_prob", "query": "I love natural language processing"})
    add({"index": n, "query_type": "find", "query": "natural language processing"})
    segs = side.ig.find(input_ids=nlp)["segment_by_shard"]
    s, (lo, _) = next((s, g) for s, g in enumerate(segs) if g[1] > g[0])
    add({"index": n, "query_type": "get_doc_by_rank", "query": "natural language processing",
         "s": s, "rank": lo, "max_disp_len": 20})
    both = "natural language processing AND deep learning"
    add({"index": n, "query_type": "find_cnf", "query": both}, judge_cnf(side, cnf(both)))
    ptrs = side.ig.find_cnf(cnf=cnf(both))["ptrs_by_shard"]
    s, ps = next((s, ps) for s, ps in enumerate(ptrs) if ps)
    add({"index": n, "query_type": "get_doc_by_ptr", "query": both, "s": s, "ptr": ps[0],
         "max_disp_len": 30}, judge_odd_pointer)
    add({"index": n, "query_type": "search_docs", "query": both, "maxnum": 10,
         "max_disp_len": 50}, judge_search(side, cnf(both), 10, 50, http=True))
    add({"index": n, "query_type": "search_docs", "query": "learning", "maxnum": 10,
         "max_disp_len": 40},
        judge_search(side, m.tok.tokenize("learning"), 10, 40, http=True))
    add({"index": n, "query_type": "creativity", "query": "natural language processing is a "
         "field of deep learning and of artificial intelligence"})
    # Bad requests: infini-gram answers {"error"} (200 for a bad query, 400 for a bad request).
    for bad in ({"query_type": "prob", "query": ""}, {"query_type": "count"},
                {"query_type": "count", "query_ids": [70000]},
                {"query_type": "ntd", "query": "a", "max_support": 1001},
                {"query_type": "search_docs", "query": "a", "maxnum": 11},
                {"query_type": "get_doc_by_rank", "query": "a", "s": 0, "rank": 10**9},
                {"query_type": "creativity", "query": ""}):
        add({"index": n, **bad}, judge_error("http-errors"))
    return out


def judge_empty_http(ours: Any, theirs: Any) -> str | None:
    assert ours.get("type") == "InvalidQueryError" and theirs["cnt"] > 0
    return "search-empty"


def _http(client: TestClient, payload: dict[str, Any]) -> Any:
    r = client.post("/", json=payload)
    body = r.json()
    body.pop("latency", None)
    return body if r.status_code == 200 else {"status": r.status_code, **body}


@pytest.mark.parametrize("name", SIDES)
def test_api_payloads(sides: dict[str, Side], client: TestClient, name: str) -> None:
    """infini-gram's API payloads, ``POST /`` against infini-gram's server (its model)."""
    side = sides[name]
    c = Checks("http")
    for payload, judge in _payloads(side):
        status, theirs = side.model.post(payload)
        theirs = plain(json.loads(json.dumps(theirs)))  # as it reaches a client
        theirs.pop("latency", None)
        if status != 200:
            theirs = {"status": status, **theirs}
        ours = _run(lambda payload=payload: _http(client, payload))

        def errors_or(j: Any) -> Any:
            def judge_all(o: Any, t: Any) -> str | None:
                if "error" in t and "error" in o:
                    return "http-errors"
                return j(o, t) if j is not None else None
            return judge_all
        c.verdict(json.dumps(payload), ours, theirs, errors_or(judge))
    c.done()


def test_differences_are_documented() -> None:
    """Every difference id the judges can give is a row of docs/compat.md."""
    text = COMPAT_DOC.read_text() if COMPAT_DOC.exists() else ""
    ids = {"ntd-exact", "ntd-end-of-shard", "cnf-cap", "cnf-prefix", "cnf-chain", "cnf-edge",
           "search-sampling", "search-empty", "separator-id", "ptr-alignment", "http-errors"}
    missing = sorted(i for i in ids if f"`{i}`" not in text)
    assert not missing, f"docs/compat.md lacks {missing}"


def test_judges_reject_what_is_not_a_documented_difference(sides: dict[str, Side]) -> None:
    """A judge explains only its own difference: a wrong count, a wrong window, a wrong
    distribution are still differences."""
    side = sides["gpt2"]
    nlp, dl = side.enc(" natural language processing"), side.enc(" deep learning")
    cnf = [[nlp], [dl]]
    ours = side.ours.find_cnf(cnf)
    theirs = side.ig.find_cnf(cnf)
    wrong = {**ours, "cnt": ours["cnt"] + 1}
    with pytest.raises(AssertionError):
        judge_cnf(side, cnf)(wrong, theirs)
    dist = side.ours.ntd([], max_support=5)
    bad = {**dist, "prompt_cnt": dist["prompt_cnt"] - 1}
    with pytest.raises(AssertionError):
        judge_ntd(side, [])(bad, side.ig.ntd(prompt_ids=[], max_support=5))
    found = side.ours.search_docs(nlp, maxnum=2, max_disp_len=20)
    moved = {**found, "documents": [{**d, "needle_offset": d["needle_offset"] + 1}
                                    for d in found["documents"]]}
    with pytest.raises(AssertionError):
        judge_search(side, nlp, 2, 20)(plain(moved), side.ig.search_docs(
            input_ids=nlp, maxnum=2, max_disp_len=20))
