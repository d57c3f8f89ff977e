"""Evaluate the ∞-gram on held-out text, alone or interpolated with a neural causal LM (the
infini-gram paper's headline experiment). Semantics: ``docs/evaluation.md``.

Per text, one :meth:`Engine.infgram_text` call gives every token's ∞-gram probability and
suffix length; positions whose longest suffix is not always followed by the actual token get
one :meth:`Engine.infgram_ntd` of that suffix (cached per distinct suffix) for the argmax and
the sparse/dense split. With an LM (``torch`` + ``transformers``, the ``lm`` extra), its own
per-token probabilities are computed on the CPU and mixed::

    p = λ_s · p_∞ + (1 − λ_s) · p_LM   at sparse positions (one distinct next token),
    p = λ_d · p_∞ + (1 − λ_d) · p_LM   at dense positions,

with λ_s, λ_d maximizing the log-likelihood of a dev split of the texts (exactly: the
objective is concave in each λ, solved by bisection on its derivative).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .._extras import require
from ..errors import InvalidQueryError
from ..errors import MissingDependencyError as MissingDependencyError  # its home until now
from ..query import tables
from ..query.tables import Columns, Tabular

if TYPE_CHECKING:
    from ..engine import Engine, Query

#: Token log-probabilities of one text: ``f(ids) -> array`` with entry ``j`` = log p(ids[j] |
#: ids[:j]) for ``j >= 1`` (entry 0 is ignored unless ``bos_id`` was given).
LMScorer = Callable[[list[int]], np.ndarray]


# ----------------------------------------------------------------------------- per text


@dataclass(frozen=True, eq=False)
class TextEval(Tabular):
    """Per-token arrays of one text (entry ``j`` is about ``token_ids[j]`` given the tokens
    before it). ``scored`` marks the positions the summary counts (``j >= 1``, or all of them
    with a ``bos_id``); ``lm_logprob`` is NaN without an LM. ``to_dict()`` gives the arrays
    as lists (NaN as None), ``to_pandas()``/``to_arrow()`` one row per token."""

    token_ids: np.ndarray
    suffix_len: np.ndarray
    prob: np.ndarray          # ∞-gram probability (0 where the suffix never continues so)
    argmax: np.ndarray        # ∞-gram most likely next token (ties: smallest id; -1: none)
    sparse: np.ndarray        # the longest suffix has exactly one distinct next token
    lm_logprob: np.ndarray
    scored: np.ndarray

    @property
    def agree(self) -> np.ndarray:
        return self.argmax == self.token_ids

    def columns(self) -> Columns:
        """One row per token: ``position``, ``token_id``, ``suffix_len``, ``prob``,
        ``argmax``, ``agree``, ``sparse``, ``scored``, ``lm_logprob``."""
        return {"position": ("int", np.arange(self.token_ids.shape[0])),
                "token_id": ("int", self.token_ids), "suffix_len": ("int", self.suffix_len),
                "prob": ("float", self.prob), "argmax": ("int", self.argmax),
                "agree": ("bool", self.agree), "sparse": ("bool", self.sparse),
                "scored": ("bool", self.scored), "lm_logprob": ("float", self.lm_logprob)}

    def to_dict(self) -> dict[str, Any]:
        return {name: [None if isinstance(v, float) and math.isnan(v) else v
                       for v in np.asarray(values).tolist()]
                for name, (_, values) in self.columns().items()}


def infgram_eval(engine: Engine, text: Query,
                 ntd_cache: dict[tuple[int, ...], tuple[int, int]] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(token_ids, suffix_len, prob, argmax, sparse)`` of every token of ``text``.

    ``argmax[j]`` is the most frequent token after the longest occurring suffix of
    ``text[:j]`` (smallest id on ties, -1 when the suffix only ends documents) and
    ``sparse[j]`` says that suffix has exactly one distinct next token (end-of-document
    occurrences ignored). Where ``cont_count == prompt_count`` both are known without a query
    (every occurrence continues with ``text[j]``); elsewhere one ``infgram_ntd`` of the suffix.
    """
    r = engine.infgram_text(text)
    ids = r.token_ids
    n = len(r)
    argmax = np.full(n, -1, dtype=np.int64)
    sparse = np.zeros(n, dtype=bool)
    cache = {} if ntd_cache is None else ntd_cache
    full = (r.cont_count == r.prompt_count) & (r.prompt_count > 0)
    argmax[full] = ids[full]
    sparse[full] = True
    for j in np.flatnonzero(~full).tolist():
        L = int(r.suffix_len[j])
        key = tuple(ids[j - L:j].tolist())
        hit = cache.get(key)
        if hit is None:
            d = engine.infgram_ntd(list(key)).dist
            top = d.most_common(1)
            hit = (top[0][0] if top else -1, len(d.counts))
            cache[key] = hit
        argmax[j] = hit[0]
        sparse[j] = hit[1] == 1
    prob = np.nan_to_num(np.asarray(r.prob, dtype=np.float64), nan=0.0)
    return ids, np.asarray(r.suffix_len), prob, argmax, sparse


# ----------------------------------------------------------------------------- the LM


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def _lm_max_context(model: Any) -> int:
    cfg = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 1:
            return v
    return 1024


def lm_scorer(lm: Any, engine: Engine, *, max_context: int | None = None,
              stride: int | None = None, bos_id: int | None = None,
              probe_text: str | None = None) -> LMScorer:
    """A scorer for a Hugging Face causal LM: ``lm`` is a path (a directory with
    ``config.json``), a loaded model, or ``(model, tokenizer)``.

    The LM must use the index's token ids: its output vocabulary must cover
    ``engine.vocab_size``, and when both have a tokenizer they must encode ``probe_text``
    alike; else :class:`InvalidQueryError`. Texts longer than the context are scored in
    overlapping windows of ``max_context`` tokens moving by ``stride`` (default: half of it),
    so every token has at least ``max_context - stride`` tokens of context once available.
    """
    torch = require("torch", "lm", "scoring with a causal LM")
    hf_tok = None
    if isinstance(lm, (str, Path)):
        transformers = require("transformers", "lm", "loading a causal LM")
        path = Path(lm)
        if not (path / "config.json").is_file():
            raise InvalidQueryError(f"--lm {str(lm)!r}: not a directory with a config.json "
                                    "(a saved Hugging Face causal LM; models are not "
                                    "downloaded)")
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(str(path))
        except (OSError, ValueError) as e:
            raise InvalidQueryError(f"cannot load the LM at {str(lm)!r}: {e}") from None
        # Only a tokenizer saved beside the model (never a default fetched by model type).
        if any((path / f).is_file() for f in _TOKENIZER_FILES):
            try:
                hf_tok = transformers.AutoTokenizer.from_pretrained(str(path))
            except (OSError, ValueError, TypeError, KeyError):
                hf_tok = None
    elif isinstance(lm, tuple):
        model, hf_tok = lm
    else:
        model = lm
    model.eval()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    out_vocab = int(head.weight.shape[0]) if head is not None \
        else int(getattr(model.config, "vocab_size", 0))
    if out_vocab < engine.vocab_size:
        raise InvalidQueryError(
            f"the LM predicts {out_vocab} token ids but the index has {engine.vocab_size}: "
            "the LM must use the same tokenizer as the index")
    if hf_tok is not None and engine.tokenizer is not None and probe_text:
        a = engine.tokenize(probe_text)
        b = list(hf_tok.encode(probe_text, add_special_tokens=False))
        if a != b:
            k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            raise InvalidQueryError(
                f"the LM's tokenizer and the index's disagree (first at token {k} of the "
                "first text): the LM must use the same tokenizer as the index")
    ctx = max_context or _lm_max_context(model)
    if ctx < 2:
        raise InvalidQueryError(f"max_context must be >= 2, not {ctx}")
    step = stride or max(1, ctx // 2)
    step = min(step, ctx - 1)

    def score(ids: list[int]) -> np.ndarray:
        seq = ([bos_id] if bos_id is not None else []) + list(ids)
        off = 1 if bos_id is not None else 0
        out = np.full(len(seq), np.nan)
        t0 = 1  # targets t0..t1-1, predicted from seq[s:t1]
        with torch.no_grad():
            while t0 < len(seq):
                t1 = min(len(seq), t0 + step)
                s = max(0, t1 - ctx)
                x = torch.tensor([seq[s:t1]], dtype=torch.long)
                logits = model(input_ids=x).logits[0].float()
                logp = torch.log_softmax(logits, dim=-1)
                tgt = torch.tensor(seq[t0:t1], dtype=torch.long)
                rows = torch.arange(t0 - 1 - s, t1 - 1 - s)
                out[t0:t1] = logp[rows, tgt].double().numpy()
                t0 = t1
        return out[off:] if off else out

    return score


# ----------------------------------------------------------------------------- mixing


def perplexity(logprobs: np.ndarray) -> float:
    """``exp(-mean(logprobs))`` (natural logs); ``inf`` if any is ``-inf``, NaN if empty."""
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.shape[0] == 0:
        return math.nan
    return float(np.exp(-lp.mean()))


def improvement(ppl_neural: float, ppl_comb: float) -> float:
    """The paper's relative improvement ``(PPL_neural − PPL_comb) / (PPL_neural − 1)``."""
    return (ppl_neural - ppl_comb) / (ppl_neural - 1.0)


def mix_logprobs(p_inf: np.ndarray, lm_logprob: np.ndarray, lam: float | np.ndarray
                 ) -> np.ndarray:
    """``log(λ·p_∞ + (1−λ)·p_LM)``, computed stably in log space."""
    lam = np.asarray(lam, dtype=np.float64)
    with np.errstate(divide="ignore"):
        a = np.log(lam) + np.log(p_inf)
        b = np.log1p(-lam) + lm_logprob
    return np.logaddexp(a, b)


def fit_lambda(p_inf: np.ndarray, lm_logprob: np.ndarray, tol: float = 1e-9) -> float:
    """The λ in [0, 1] maximizing ``Σ log(λ·p_∞ + (1−λ)·p_LM)``.

    The objective is concave in λ, so the maximum is at 0, at 1, or where its derivative
    ``Σ (p_∞ − p_LM) / (λ·p_∞ + (1−λ)·p_LM)`` vanishes (found by bisection). No tokens: 0.
    """
    p = np.asarray(p_inf, dtype=np.float64)
    q = np.exp(np.asarray(lm_logprob, dtype=np.float64))
    if p.shape[0] == 0:
        return 0.0

    def slope(lam: float) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            m = lam * p + (1 - lam) * q
            terms = (p - q) / m
        terms = np.where(m > 0, terms, np.where(p > q, np.inf, -np.inf))
        return float(terms.sum())

    if slope(0.0) <= 0:
        return 0.0
    if slope(1.0) >= 0:
        return 1.0
    lo, hi = 0.0, 1.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if slope(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# ----------------------------------------------------------------------------- results


#: The tables of an :class:`EvalResult`: every scored-or-not token, or the summary by suffix
#: length.
EvalTable = Literal["tokens", "by_suffix_len"]


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` found. ``to_dict()`` is the JSON summary; ``texts`` holds the
    per-token arrays (for plots and coloured output), ``dev`` the dev-split flags;
    ``to_pandas(table)``/``to_arrow(table)`` give the token table or the agreement by suffix
    length (:meth:`columns`)."""

    texts: list[TextEval]
    dev: list[bool]
    lm: dict[str, Any] | None = None
    _infgram: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"num_texts": len(self.texts), "infgram": self._infgram}
        if self.lm is not None:
            out["lm"] = self.lm
        return out

    def agreement_by_suffix_len(self) -> list[dict[str, Any]]:
        return self._infgram["by_suffix_len"]

    def columns(self, table: EvalTable = "tokens") -> Columns:
        """``"tokens"``: one row per token of every text: ``text`` (its index), ``dev``
        (in the dev split), then :meth:`TextEval.columns`. ``"by_suffix_len"``: one row per
        suffix length met among the scored tokens: ``suffix_len``, ``tokens``,
        ``agreement``."""
        if table == "by_suffix_len":
            rows = self.agreement_by_suffix_len()
            return {"suffix_len": ("int", [r["suffix_len"] for r in rows]),
                    "tokens": ("int", [r["tokens"] for r in rows]),
                    "agreement": ("float", [r["agreement"] for r in rows])}
        if table != "tokens":
            raise InvalidQueryError(f'table must be "tokens" or "by_suffix_len", not {table!r}')
        sizes = [t.token_ids.shape[0] for t in self.texts]
        out: Columns = {"text": ("int", np.repeat(np.arange(len(sizes)), sizes)),
                        "dev": ("bool", np.repeat(np.asarray(self.dev, dtype=bool), sizes))}
        per_text = [t.columns() for t in self.texts]
        for name, (kind, empty) in _EMPTY_TEXT.columns().items():
            out[name] = (kind, np.concatenate([np.asarray(empty)]
                                              + [np.asarray(c[name][1]) for c in per_text]))
        return out

    def to_pandas(self, table: EvalTable = "tokens") -> Any:
        """:meth:`columns` of ``table`` as a ``pandas.DataFrame`` (the ``pandas`` extra)."""
        return tables.to_pandas(self.columns(table), "EvalResult")

    def to_arrow(self, table: EvalTable = "tokens") -> Any:
        """:meth:`columns` of ``table`` as a ``pyarrow.Table`` (the ``parquet`` extra)."""
        return tables.to_arrow(self.columns(table), "EvalResult")


_NONE = np.zeros(0, dtype=np.int64)
#: A text of no tokens: what the token table's columns are when there is no text.
_EMPTY_TEXT = TextEval(_NONE, _NONE, np.zeros(0), _NONE, np.zeros(0, bool), np.zeros(0),
                       np.zeros(0, bool))


def _infgram_summary(texts: list[TextEval]) -> dict[str, Any]:
    if texts:
        sl = np.concatenate([t.suffix_len[t.scored] for t in texts])
        ag = np.concatenate([t.agree[t.scored] for t in texts])
        sp = np.concatenate([t.sparse[t.scored] for t in texts])
        pr = np.concatenate([t.prob[t.scored] for t in texts])
    else:
        sl = np.zeros(0, np.int64)
        ag = sp = np.zeros(0, bool)
        pr = np.zeros(0)
    n = int(sl.shape[0])

    def frac(x: np.ndarray) -> float | None:
        return float(x.mean()) if x.shape[0] else None

    hist = np.bincount(sl, minlength=1) if n else np.zeros(0, np.int64)
    agree_by = np.bincount(sl, weights=ag, minlength=hist.shape[0]) if n else hist
    by_len = [{"suffix_len": L, "tokens": int(c), "agreement": float(agree_by[L] / c)}
              for L, c in enumerate(hist.tolist()) if c]
    return {
        "tokens": n,
        "agreement": frac(ag),
        "agreement_sparse": frac(ag[sp]),
        "agreement_dense": frac(ag[~sp]),
        "sparse_fraction": frac(sp),
        "coverage": frac(pr > 0),
        "suffix_len_mean": frac(sl.astype(np.float64)),
        "suffix_len_median": float(np.median(sl)) if n else None,
        "suffix_len_hist": hist.tolist(),
        "by_suffix_len": by_len,
    }


def _split(n: int, dev_fraction: float, seed: int) -> list[bool]:
    """Which of ``n`` texts form the dev split: ``round(dev_fraction·n)``, at least one and
    leaving at least one for the test split, chosen by ``random.Random(seed)``."""
    if n < 2:
        raise InvalidQueryError("fitting the interpolation weights needs at least 2 texts "
                                "(a dev and a test split), or pass lambdas=(sparse, dense)")
    k = min(max(1, round(dev_fraction * n)), n - 1)
    chosen = set(random.Random(seed).sample(range(n), k))
    return [i in chosen for i in range(n)]


def _lm_summary(texts: list[TextEval], dev: list[bool],
                lambdas: tuple[float, float] | None) -> dict[str, Any]:
    def gather(which: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sel = [t for t, d in zip(texts, dev) if d == which]
        if not sel:
            return np.zeros(0), np.zeros(0), np.zeros(0, bool)
        return (np.concatenate([t.prob[t.scored] for t in sel]),
                np.concatenate([t.lm_logprob[t.scored] for t in sel]),
                np.concatenate([t.sparse[t.scored] for t in sel]))

    p_dev, q_dev, s_dev = gather(True)
    p_test, q_test, s_test = gather(False)
    if lambdas is None:
        lam_s = fit_lambda(p_dev[s_dev], q_dev[s_dev])
        lam_d = fit_lambda(p_dev[~s_dev], q_dev[~s_dev])
    else:
        lam_s, lam_d = (float(x) for x in lambdas)

    def split_stats(p: np.ndarray, q: np.ndarray, s: np.ndarray) -> dict[str, Any]:
        mixed = mix_logprobs(p, q, np.where(s, lam_s, lam_d))
        ppl_lm, ppl_mix = perplexity(q), perplexity(mixed)
        return {"tokens": int(p.shape[0]), "ppl_lm": ppl_lm, "ppl_mixed": ppl_mix,
                "improvement": improvement(ppl_lm, ppl_mix) if p.shape[0] else None}

    return {"lambda_sparse": lam_s, "lambda_dense": lam_d, "fitted": lambdas is None,
            "dev": split_stats(p_dev, q_dev, s_dev),
            "test": split_stats(p_test, q_test, s_test)}


# ----------------------------------------------------------------------------- entry point


def evaluate(engine: Engine, texts: Sequence[Query], *, lm: Any = None,
             dev_fraction: float = 0.5, seed: int = 0,
             lambdas: tuple[float, float] | None = None, bos_id: int | None = None,
             max_context: int | None = None, stride: int | None = None) -> EvalResult:
    """Evaluate the ∞-gram of ``engine`` on ``texts`` (token ids or str), alone or mixed with
    a causal LM.

    Without ``lm``: next-token agreement (overall, sparse/dense, by suffix length), the
    suffix-length histogram and the coverage (fraction of tokens with ``p_∞ > 0``; the ∞-gram
    alone has infinite perplexity as soon as one token is uncovered).

    With ``lm`` (a path, a model, ``(model, tokenizer)``, or a :data:`LMScorer` callable):
    the texts are split into dev (``dev_fraction`` of them, by ``seed``) and test; λ_sparse
    and λ_dense are fitted on dev (or given as ``lambdas``) and both splits report the LM's
    perplexity, the mixture's, and the paper's improvement ``(PPL_LM − PPL_mix) /
    (PPL_LM − 1)``. Positions scored: ``j >= 1`` (token 0 has no context), or every token
    when ``bos_id`` is given (the LM then sees it before each text).
    """
    if not 0 < dev_fraction < 1:
        raise InvalidQueryError(f"dev_fraction must be in (0, 1), not {dev_fraction!r}")
    texts = list(texts)
    scorer: LMScorer | None = None
    if lm is not None:
        if callable(lm) and not hasattr(lm, "config"):
            scorer = lm
        else:
            probe = next((t for t in texts if isinstance(t, str)), None)
            scorer = lm_scorer(lm, engine, max_context=max_context, stride=stride,
                               bos_id=bos_id, probe_text=probe[:2000] if probe else None)
    dev = _split(len(texts), dev_fraction, seed) if scorer is not None and lambdas is None \
        else [False] * len(texts)
    cache: dict[tuple[int, ...], tuple[int, int]] = {}
    out: list[TextEval] = []
    for text in texts:
        ids, sl, prob, argmax, sparse = infgram_eval(engine, text, cache)
        scored = np.ones(ids.shape[0], dtype=bool)
        if bos_id is None and ids.shape[0]:
            scored[0] = False
        lp = np.full(ids.shape[0], np.nan)
        if scorer is not None and ids.shape[0]:
            lp = np.asarray(scorer(ids.tolist()), dtype=np.float64)
            if lp.shape != ids.shape:
                raise InvalidQueryError(f"the LM scorer returned {lp.shape[0]} log-probs for "
                                        f"{ids.shape[0]} tokens")
        for a in (ids, sl, prob, argmax, sparse, lp, scored):
            a.setflags(write=False)
        out.append(TextEval(ids, sl, prob, argmax, sparse, lp, scored))
    lm_stats = _lm_summary(out, dev, lambdas) if scorer is not None else None
    return EvalResult(texts=out, dev=dev, lm=lm_stats, _infgram=_infgram_summary(out))


def read_texts(path: str | Path, text_field: str = "text") -> list[str]:
    """The texts of a corpus file (JSONL/.txt one per line/Parquet), as ``anygram build``
    reads them."""
    from ..index.corpus import iter_documents

    return [d.text for d in iter_documents(path, text_field=text_field, txt_mode="line")]
