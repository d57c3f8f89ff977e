"""``anygram.tools.evaluation`` / ``anygram.tools.render`` and the ``eval`` / ``color`` commands.

Arithmetic (perplexity, mixing, λ fitting) is checked against direct formulas; agreement,
sparsity and histograms against ``infgram_ntd`` / ``infgram_prob`` called per position; the
LM path against a tiny GPT-2 trained here on the byte tokens of the indexed corpus (no
download; skipped, saying so, without the ``lm`` extra). Plots are skipped without matplotlib.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from optional import torch_and_transformers

from anygram import Engine, InvalidQueryError, build_index
from anygram.cli import main
from anygram.index.build import build_index_from_ids
from anygram.tools.evaluation import (
    evaluate,
    fit_lambda,
    improvement,
    infgram_eval,
    lm_scorer,
    mix_logprobs,
    perplexity,
)
from anygram.tools.render import BINS, ansi, bin_of, eval_html, html_page, token_pieces

WORDS = "the cat dog sat on mat log a and ran to big red small house".split()


def _corpus(n_docs: int = 60, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) + "."
            for _ in range(n_docs)]


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _corpus()


@pytest.fixture(scope="module")
def byte_index(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> Path:
    d = tmp_path_factory.mktemp("evidx")
    src = d / "corpus.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in corpus), encoding="utf-8")
    build_index(src, d / "idx", tokenizer="bytes", progress=False)
    return d / "idx"


@pytest.fixture()
def engine(byte_index: Path):
    with Engine.open(byte_index) as e:
        yield e


# ----------------------------------------------------------------------------- arithmetic


def test_perplexity_and_improvement_formulas() -> None:
    lp = np.log([0.5, 0.25, 0.125])
    assert perplexity(lp) == pytest.approx((0.5 * 0.25 * 0.125) ** (-1 / 3))
    assert perplexity(np.array([0.0, -math.inf])) == math.inf
    assert math.isnan(perplexity(np.zeros(0)))
    assert improvement(22.82, 13.71) == pytest.approx(0.4175, abs=1e-4)  # paper, GPT-2 117M


def test_mix_logprobs_matches_direct_formula() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(50)
    p[::7] = 0.0
    q = rng.random(50) * 0.9 + 0.05
    for lam in (0.0, 0.3, 1.0):
        with np.errstate(divide="ignore"):
            want = np.log(lam * p + (1 - lam) * q)
        np.testing.assert_allclose(mix_logprobs(p, np.log(q), lam), want, rtol=1e-12)


def test_fit_lambda_recovers_the_optimum() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(5, 200))
        p = np.where(rng.random(n) < 0.4, 0.0, rng.random(n))
        q = rng.random(n) * 0.5 + 1e-3
        lam = fit_lambda(p, np.log(q))
        grid = np.linspace(0, 1, 20001)
        with np.errstate(divide="ignore"):
            ll = [np.log(g * p + (1 - g) * q).sum() for g in grid]
        best = grid[int(np.argmax(ll))]
        assert abs(lam - best) <= 1e-4 + 1e-9
        with np.errstate(divide="ignore"):
            assert np.log(lam * p + (1 - lam) * q).sum() >= max(ll) - 1e-6
    # Closed form with two tokens: p=(1,0), q=(a,a) -> maximize log(l+(1-l)a)+log((1-l)a).
    a = 0.2
    assert fit_lambda(np.array([1.0, 0.0]), np.log([a, a])) == pytest.approx(
        (1 - 2 * a) / (2 * (1 - a)), abs=1e-7)
    assert fit_lambda(np.zeros(4), np.log(np.full(4, 0.3))) == 0.0
    assert fit_lambda(np.ones(3), np.log(np.full(3, 0.3))) == 1.0
    assert fit_lambda(np.zeros(0), np.zeros(0)) == 0.0


def test_perplexity_arithmetic_through_evaluate(engine: Engine, corpus: list[str]) -> None:
    texts = [corpus[0], "the zebra ran to a red house.", corpus[5], "xyz dog"]
    rng = np.random.default_rng(7)
    table: dict[tuple[int, ...], np.ndarray] = {}

    def scorer(ids: list[int]) -> np.ndarray:
        return table.setdefault(tuple(ids), np.log(rng.random(len(ids)) * 0.5 + 0.01))

    lam = (0.8, 0.3)
    r = evaluate(engine, texts, lm=scorer, lambdas=lam)
    assert r.dev == [False] * 4  # fixed weights: everything is test
    p = np.concatenate([t.prob[1:] for t in r.texts])
    s = np.concatenate([t.sparse[1:] for t in r.texts])
    q = np.concatenate([table[tuple(t.token_ids.tolist())][1:] for t in r.texts])
    lmix = np.where(s, lam[0], lam[1])
    want_lm = math.exp(-q.mean())
    want_mix = math.exp(-np.log(lmix * p + (1 - lmix) * np.exp(q)).mean())
    test = r.to_dict()["lm"]["test"]
    assert test["tokens"] == p.shape[0]
    assert test["ppl_lm"] == pytest.approx(want_lm)
    assert test["ppl_mixed"] == pytest.approx(want_mix)
    assert test["improvement"] == pytest.approx((want_lm - want_mix) / (want_lm - 1))

    fitted = evaluate(engine, texts, lm=scorer, dev_fraction=0.5, seed=1)
    assert sum(fitted.dev) == 2
    d = fitted.to_dict()["lm"]
    assert d["fitted"] and 0 <= d["lambda_sparse"] <= 1 and 0 <= d["lambda_dense"] <= 1
    # The fitted weights are at least as good on dev as any on a grid.
    dev = [t for t, f in zip(fitted.texts, fitted.dev) if f]
    pd = np.concatenate([t.prob[1:] for t in dev])
    sd = np.concatenate([t.sparse[1:] for t in dev])
    qd = np.concatenate([table[tuple(t.token_ids.tolist())][1:] for t in dev])
    best = mix_logprobs(pd, qd, np.where(sd, d["lambda_sparse"], d["lambda_dense"])).sum()
    for a in np.linspace(0, 1, 11):
        for b in np.linspace(0, 1, 11):
            assert best >= mix_logprobs(pd, qd, np.where(sd, a, b)).sum() - 1e-9


def test_evaluate_argument_errors(engine: Engine) -> None:
    with pytest.raises(InvalidQueryError, match="at least 2 texts"):
        evaluate(engine, ["the cat"], lm=lambda ids: np.zeros(len(ids)))
    with pytest.raises(InvalidQueryError, match="dev_fraction"):
        evaluate(engine, ["a", "b"], dev_fraction=1.0)
    with pytest.raises(InvalidQueryError, match="returned"):
        evaluate(engine, ["the cat", "a dog"], lm=lambda ids: np.zeros(1), lambdas=(0.5, 0.5))


# ----------------------------------------------------------------------------- ∞-gram stats


def _brute(engine: Engine, ids: list[int]) -> tuple[list[int], list[int], list[bool], list[float]]:
    sl, am, sp, pr = [], [], [], []
    for j in range(len(ids)):
        d = engine.infgram_ntd(ids[:j])
        top = d.dist.most_common(1)
        am.append(top[0][0] if top else -1)
        sp.append(len(d.dist.counts) == 1)
        r = engine.infgram_prob(ids[:j], ids[j])
        sl.append(r.suffix_len)
        pr.append(r.prob or 0.0)
        assert r.suffix_len == d.suffix_len
    return sl, am, sp, pr


def test_agreement_and_histogram_match_brute_force(engine: Engine, corpus: list[str]) -> None:
    texts = [corpus[3], corpus[10][:20] + " zebra " + corpus[11], "qq the cat sat on the mat.",
             "é dog", ""]
    r = evaluate(engine, texts)
    hist: dict[int, list[int]] = {}
    all_agree, all_sparse, covered, n = 0, 0, 0, 0
    for text, t in zip(texts, r.texts):
        ids = engine.tokenize(text)
        sl, am, sp, pr = _brute(engine, ids)
        assert t.suffix_len.tolist() == sl
        assert t.argmax.tolist() == am
        assert t.sparse.tolist() == sp
        np.testing.assert_allclose(t.prob, pr)
        for j in range(1, len(ids)):
            n += 1
            ok = am[j] == ids[j]
            all_agree += ok
            all_sparse += sp[j]
            covered += pr[j] > 0
            h = hist.setdefault(sl[j], [0, 0])
            h[0] += 1
            h[1] += ok
    s = r.to_dict()["infgram"]
    assert s["tokens"] == n
    assert s["agreement"] == pytest.approx(all_agree / n)
    assert s["sparse_fraction"] == pytest.approx(all_sparse / n)
    assert s["coverage"] == pytest.approx(covered / n)
    assert {row["suffix_len"]: [row["tokens"], row["agreement"]] for row in s["by_suffix_len"]} \
        == {L: [c, pytest.approx(a / c)] for L, (c, a) in hist.items()}
    assert s["suffix_len_hist"] == [hist.get(L, [0])[0] for L in range(len(s["suffix_len_hist"]))]
    assert "lm" not in r.to_dict()
    json.dumps(r.to_dict())


def test_ids_index_and_multiple_shards(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    docs = [rng.integers(0, 6, size=int(rng.integers(3, 30))).tolist() for _ in range(40)]
    build_index_from_ids(docs, tmp_path / "i", vocab_size=6, shard_tokens=200)
    with Engine.open(tmp_path / "i") as e:
        assert e.num_shards > 1
        texts = [docs[0], rng.integers(0, 6, size=50).tolist(), docs[7][2:] + docs[8]]
        for text in texts:
            ids, sl, prob, am, sp = infgram_eval(e, text)
            bsl, bam, bsp, bpr = _brute(e, list(text))
            assert (sl.tolist(), am.tolist(), sp.tolist()) == (bsl, bam, bsp)
            np.testing.assert_allclose(prob, bpr)


# ----------------------------------------------------------------------------- rendering


def test_bins_cover_every_length() -> None:
    assert [bin_of(x) for x in (0, 1, 2, 3, 4, 15, 16, 31, 32, 10**9)] == \
        [0, 1, 2, 2, 3, 4, 5, 5, 6, 6]
    assert len(BINS) == 7


def test_token_pieces_and_html(engine: Engine) -> None:
    text = "the café <b>&</b>"
    ids = engine.tokenize(text)
    pieces = token_pieces(engine, ids)
    assert len(pieces) == len(ids) and "".join(pieces) == text
    page = html_page(pieces, engine.infgram_text(ids).suffix_len.tolist())
    assert ">&lt;</span>" in page and ">&amp;</span>" in page and "<b>" not in page
    assert page.count('<span class="b') == len(ids) + len(BINS)
    out = ansi(pieces, [0] * len(pieces))
    assert "\x1b[" in out and "suffix length" in out


def test_plot_and_html_written(engine: Engine, corpus: list[str], tmp_path: Path) -> None:
    r = evaluate(engine, [corpus[1], "zebra cat"])
    html = eval_html(engine, r)
    assert html.count("<pre>") == 2
    pytest.importorskip("matplotlib")
    from anygram.tools.render import plot

    plot(r, tmp_path / "p.png")
    data = (tmp_path / "p.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


# ----------------------------------------------------------------------------- CLI


def _run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _texts_file(tmp_path: Path, texts: list[str]) -> Path:
    p = tmp_path / "held.jsonl"
    p.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return p


def test_cli_eval_and_color(byte_index: Path, corpus: list[str], tmp_path: Path) -> None:
    held = _texts_file(tmp_path, [corpus[2], "a zebra sat on the mat."])
    args = ["eval", "--index", byte_index, "--texts", held, "--html", tmp_path / "o.html"]
    has_mpl = True
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        has_mpl = False
    if has_mpl:
        args += ["--plot", tmp_path / "o.png"]
    res = _run(*args)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    with Engine.open(byte_index) as e:
        assert out == json.loads(json.dumps(evaluate(e, [corpus[2], "a zebra sat on the mat."])
                                            .to_dict()))
    assert (tmp_path / "o.html").stat().st_size > 100
    if has_mpl:
        assert (tmp_path / "o.png").stat().st_size > 1000

    res = _run("color", "--index", byte_index, "the cat zz", "--color")
    assert res.exit_code == 0
    assert "\x1b[48;5;" in res.stdout
    plain = _run("color", "--index", byte_index, "the cat zz", "--no-color")
    assert plain.stdout.splitlines()[0] == "the cat zz"


def test_cli_eval_errors(byte_index: Path, corpus: list[str], tmp_path: Path) -> None:
    held = _texts_file(tmp_path, [corpus[2], corpus[4]])
    res = _run("eval", "--index", byte_index, "--texts", held, "--lm", tmp_path / "nope")
    assert res.exit_code == 1 and res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr


# ----------------------------------------------------------------------------- a real LM


@pytest.fixture(scope="module")
def tiny_lm(corpus: list[str], tmp_path_factory: pytest.TempPathFactory):
    torch, transformers = torch_and_transformers()
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=256,
                                  n_positions=64, bos_token_id=255, eos_token_id=255)
    model = transformers.GPT2LMHeadModel(cfg)
    data = [b for t in corpus[:40] for b in (t + " ").encode()]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = random.Random(0)
    model.train()
    for _ in range(150):
        starts = [rng.randrange(0, len(data) - 33) for _ in range(16)]
        x = torch.tensor([data[s:s + 32] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    path = tmp_path_factory.mktemp("lm") / "tiny"
    model.save_pretrained(path)
    return model, path


def test_lm_scorer_windows_match_one_pass(tiny_lm, engine: Engine, corpus: list[str]) -> None:
    import torch

    model, _ = tiny_lm
    ids = engine.tokenize(corpus[7])[:50]
    one = lm_scorer(model, engine)(ids)
    windowed = lm_scorer(model, engine, stride=3)(ids)  # text fits: same context
    with torch.no_grad():
        ref = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
    want = [float(ref[j - 1, ids[j]]) for j in range(1, len(ids))]
    np.testing.assert_allclose(one[1:], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(windowed[1:], want, rtol=1e-4, atol=1e-5)
    assert math.isnan(one[0])
    long_ids = engine.tokenize(" ".join(corpus[:6]))  # > 64 tokens: sliding windows
    lp = lm_scorer(model, engine, stride=16)(long_ids)
    assert np.isfinite(lp[1:]).all() and (lp[1:] < 0).all()
    with torch.no_grad():
        x = torch.tensor([long_ids[-64:]])
        ref = torch.log_softmax(model(input_ids=x).logits[0], -1)
    # The last window holds the last 64 tokens: its final target matches a direct pass.
    assert lp[-1] == pytest.approx(float(ref[-2, long_ids[-1]]), rel=1e-4)


def test_mixing_with_a_tiny_lm_helps(tiny_lm, engine: Engine, corpus: list[str]) -> None:
    _, path = tiny_lm
    texts = corpus[40:60]  # in the index, unseen by the LM
    r = evaluate(engine, texts, lm=path, dev_fraction=0.5, seed=0)
    d = r.to_dict()["lm"]
    assert d["test"]["tokens"] > 100
    assert d["test"]["ppl_mixed"] <= d["test"]["ppl_lm"]
    assert d["dev"]["ppl_mixed"] <= d["dev"]["ppl_lm"]
    assert d["test"]["improvement"] > 0
    assert d["lambda_sparse"] > 0.5


def test_lm_vocab_mismatch_is_refused(tiny_lm, tmp_path: Path) -> None:
    _, transformers = torch_and_transformers()
    small = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=1, n_head=2, n_embd=8, vocab_size=4, n_positions=16))
    build_index_from_ids([[1, 2, 3, 4, 5, 6, 7]], tmp_path / "i", vocab_size=10)
    with Engine.open(tmp_path / "i") as e:
        with pytest.raises(InvalidQueryError, match="same tokenizer"):
            evaluate(e, [[1, 2], [3, 4]], lm=small)


def test_cli_eval_with_lm(tiny_lm, byte_index: Path, corpus: list[str], tmp_path: Path) -> None:
    _, path = tiny_lm
    held = _texts_file(tmp_path, corpus[40:50])
    res = _run("eval", "--index", byte_index, "--texts", held, "--lm", path, "--pretty")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["lm"]["test"]["ppl_mixed"] <= out["lm"]["test"]["ppl_lm"]


def test_bos_id_scores_every_token(tiny_lm, engine: Engine, corpus: list[str]) -> None:
    import torch

    model, _ = tiny_lm
    ids = engine.tokenize(corpus[9])[:30]
    lp = lm_scorer(model, engine, bos_id=254)(ids)
    with torch.no_grad():
        ref = torch.log_softmax(model(input_ids=torch.tensor([[254] + ids])).logits[0], -1)
    np.testing.assert_allclose(lp, [float(ref[j, ids[j]]) for j in range(len(ids))],
                               rtol=1e-4, atol=1e-5)
    r = evaluate(engine, [corpus[9], corpus[12]], lm=model, bos_id=254, lambdas=(0.5, 0.5))
    assert r.to_dict()["infgram"]["tokens"] == len(corpus[9]) + len(corpus[12])


def test_token_pieces_of_a_long_multibyte_text_join_to_its_decoding(engine: Engine) -> None:
    text = ("naïve café 日本語 🤖 " * 300).strip()
    ids = engine.tokenize(text)
    pieces = token_pieces(engine, ids)
    assert len(pieces) == len(ids) and "".join(pieces) == engine.decode(ids) == text
