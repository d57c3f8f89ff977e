"""A model of infini-gram's public API server, to compare ``POST /`` with.

What api.infini-gram.io answers for a JSON payload, as a function over a real
``infini_gram.engine.InfiniGramEngine``, written from the behaviour of infini-gram's server
(``api/api_server.py`` at HEAD 37d2929, with its byte tokenizer for u8 indexes, and
``api/api_server_creativity.py`` for ``creativity``) and its docs (``docs/source/api.rst``):

- the payload names the index (``index``, or its old name ``corpus``) and ``query_type``, and
  has exactly one of ``query`` (text) and ``query_ids``; other fields are the method's options;
- text is tokenized per tokenizer family: ``"gpt2"`` (also OLMo, GPT-NeoX) encodes
  ``" " + text`` (text not empty), ``"llama"`` encodes the text and drops a leading lone
  ``"▁"`` token, ``"bytes"`` takes UTF-8 bytes and reads ``\\xNN`` as one byte; a text with
  ``" AND "`` or ``" OR "`` is a CNF: split on ``" AND "``, then on ``" OR "``;
- ``count`` and ``search_docs`` of a CNF run ``count_cnf`` / ``search_docs_cnf``;
- the answer is the engine's dict plus ``latency``, ``token_ids`` (the query's) and ``tokens``
  (``convert_ids_to_tokens``); ``ntd`` entries get ``token`` (GPT-2's ``Ġ`` as a space),
  the ∞-gram types ``longest_suffix``, searches ``message`` and each document ``spans``, and
  the ``get_doc_*`` types ``spans`` (their ``token_ids`` is then the query's);
- errors: a malformed request is 400, an exception 500, anything else 200, with the
  engine's or the server's ``{"error": ...}`` when the query is bad.
"""

from __future__ import annotations

import re
from typing import Any

LIMITS = {"query_chars": 1000, "query_tokens": 500, "clauses": 4, "terms": 4,
          "max_support": 1000, "max_clause_freq": 500000, "max_diff_tokens": 1000,
          "maxnum": 10, "max_disp_len": 10000}
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


class ModelTokenizer:
    """The server's tokenizer of one family over a Hugging Face ``tokenizers.Tokenizer``
    (``"gpt2"``, ``"llama"``), or its own byte tokenizer (``"bytes"``, ``hf=None``)."""

    def __init__(self, family: str, hf: Any = None) -> None:
        self.family = family
        self.hf = hf
        self.vocab_size = 255 if hf is None else hf.get_vocab_size()

    def tokenize(self, text: str) -> list[int]:
        if self.family == "bytes":
            out: list[int] = []
            for k, part in enumerate(_ESCAPE.split(text)):
                out.extend([int(part, 16)] if k % 2 else part.encode("utf-8"))
            return out
        if self.family == "gpt2":
            return self.hf.encode(" " + text if text else text,
                                  add_special_tokens=False).ids  # type: ignore[no-any-return]
        ids = self.hf.encode(text, add_special_tokens=False).ids
        lone = self.hf.token_to_id("▁")
        return ids[1:] if ids and ids[0] == lone else ids  # type: ignore[no-any-return]

    def tokens(self, ids: list[int]) -> list[str]:
        if self.family == "bytes":
            return [chr(i) for i in ids]
        return [self.hf.id_to_token(i) for i in ids]

    def decode(self, ids: list[int]) -> str:
        if self.family != "bytes":
            return self.hf.decode(ids, skip_special_tokens=False)  # type: ignore[no-any-return]
        text = bytes(ids).decode("utf-8", errors="backslashreplace")
        return "".join(f"\\x{ord(c):02x}" if ord(c) < 32 and c not in "\t\n" else c
                       for c in text)


def _in_range(**options: Any) -> dict[str, str] | None:
    """The server's error for the first option outside ``[1, LIMITS[name]]``, if any."""
    for name, value in options.items():
        if value is not None and not (type(value) is int and 0 < value <= LIMITS[name]):
            return {"error": f"{name} must be an integer in [1, {LIMITS[name]}]!"}
    return None


def _labelled(tokens: list[int], needle: list[int], label: str
              ) -> list[tuple[list[int], str | None]]:
    """``tokens`` cut around each occurrence of ``needle`` (first to last, disjoint)."""
    out: list[tuple[list[int], str | None]] = []
    rest = tokens
    while True:
        at = next((i for i in range(len(rest) - len(needle) + 1)
                   if rest[i:i + len(needle)] == needle), -1)
        if at < 0:
            break
        if at:
            out.append((rest[:at], None))
        out.append((rest[at:at + len(needle)], label))
        rest = rest[at + len(needle):]
    if rest:
        out.append((rest, None))
    return out


class InfiniGramApiModel:
    """``post(payload) -> (status, body)`` of infini-gram's server over ``engine`` (one index,
    named ``name``) with ``tokenizer`` (:class:`ModelTokenizer`)."""

    def __init__(self, name: str, engine: Any, tokenizer: ModelTokenizer) -> None:
        self.name = name
        self.engine = engine
        self.tok = tokenizer

    # -------------------------------------------------------------- the route

    def post(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = dict(payload)
        if "query_type" not in data:
            return 400, {"error": "[Flask] Missing required field: 'query_type'"}
        query_type = data.pop("query_type")
        index = data.pop("corpus", None) or data.pop("index", None)
        for ignored in ("index", "engine", "source", "timestamp"):
            data.pop(ignored, None)
        if ("query" in data) == ("query_ids" in data):
            return 400, {"error": "[Flask] Exactly one of query and query_ids must be present!"}
        query, query_ids = data.pop("query", None), data.pop("query_ids", None)
        if index != self.name:
            return 400, {"error": f"[Flask] Invalid index: {index}"}
        creativity = query_type == "creativity"
        if not creativity and not (hasattr(self.engine, query_type)
                                   and hasattr(self, "_" + query_type)):
            return 400, {"error": f"[Flask] Invalid query_type: {query_type}"}
        try:
            return 200, self._process(query_type, query, query_ids, data)
        except Exception as e:  # as the server: any fault is a 500
            return 500, {"error": f"[Flask] Internal server error: {e}"}

    # -------------------------------------------------------------- parsing

    def _process(self, query_type: str, query: Any, query_ids: Any,
                 options: dict[str, Any]) -> dict[str, Any]:
        creativity = query_type == "creativity"
        if query is not None:
            if type(query) is not str:
                return {"error": "query must be a string!"}
            if len(query) > LIMITS["query_chars"]:
                return {"error": f"Please limit your input to <= {LIMITS['query_chars']} "
                                 "characters!"}
            if creativity or not (" AND " in query or " OR " in query):
                query_ids = self.tok.tokenize(query)
            else:
                query_ids = [[self.tok.tokenize(term) for term in part.split(" OR ")]
                             for part in query.split(" AND ")]
        is_cnf, tokens, err = self._validate(query_ids, creativity)
        if err is not None:
            return err
        if creativity:
            result = ({"error": "Please provide a non-empty query!"} if not query_ids
                      else self.engine.creativity(input_ids=query_ids))
        else:
            if is_cnf and query_type in ("count", "search_docs"):
                query_type += "_cnf"
            result = getattr(self, "_" + query_type)(query_ids, **options)
        result["latency"] = 0.0
        result["token_ids"] = query_ids
        result["tokens"] = tokens
        return result  # type: ignore[no-any-return]

    def _validate(self, ids: Any, simple_only: bool
                  ) -> tuple[bool, Any, dict[str, str] | None]:
        """``(is_cnf, tokens, error)`` of the query ids, checked as the server checks them."""
        def bad(i: int) -> bool:
            if simple_only:
                return i < 0 or i >= self.tok.vocab_size
            return i < 0 or (i >= self.tok.vocab_size and i != 65535)

        out_of_range = {"error": "Some item(s) in your query_ids are out-of-range!"}
        too_long = {"error": f"Please limit your input to <= {LIMITS['query_tokens']} tokens!"}
        if type(ids) is list and all(type(i) is int for i in ids):
            if len(ids) > LIMITS["query_tokens"]:
                return False, None, too_long
            if any(bad(i) for i in ids):
                return False, None, out_of_range
            return False, self.tok.tokens(ids), None
        if not simple_only and type(ids) is list and all(
                type(c) is list and all(type(t) is list and all(type(i) is int for i in t)
                                        for t in c) for c in ids):
            if sum(len(t) for c in ids for t in c) > LIMITS["query_tokens"]:
                return True, None, too_long
            if len(ids) > LIMITS["clauses"]:
                return True, None, {"error": f"Please enter at most {LIMITS['clauses']} "
                                             "disjunctive clauses!"}
            for c in ids:
                if len(c) > LIMITS["terms"]:
                    return True, None, {"error": f"Please enter at most {LIMITS['terms']} "
                                                 "terms in each disjunctive clause!"}
                if any(bad(i) for t in c for i in t):
                    return True, None, out_of_range
            return True, [[self.tok.tokens(t) for t in c] for c in ids], None
        return False, None, {"error": "query_ids must be a list of integers, or a "
                                      "triply-nested list of integers!"
                             if not simple_only else "query_ids must be a list of integers!"}

    # -------------------------------------------------------------- query types

    def _count(self, ids: list[int]) -> dict[str, Any]:
        return self.engine.count(input_ids=ids)  # type: ignore[no-any-return]

    def _count_cnf(self, cnf: Any, max_clause_freq: Any = None,
                   max_diff_tokens: Any = None) -> dict[str, Any]:
        err = _in_range(max_clause_freq=max_clause_freq, max_diff_tokens=max_diff_tokens)
        return err or self.engine.count_cnf(cnf=cnf, max_clause_freq=max_clause_freq,
                                            max_diff_tokens=max_diff_tokens)

    def _prob(self, ids: list[int]) -> dict[str, Any]:
        if not ids:
            return {"error": "Please provide a non-empty query!"}
        return self.engine.prob(prompt_ids=ids[:-1], cont_id=ids[-1])  # type: ignore[no-any-return]

    def _with_tokens(self, result: dict[str, Any]) -> dict[str, Any]:
        for token_id, entry in result.get("result_by_token_id", {}).items():
            entry["token"] = self.tok.tokens([token_id])[0].replace("Ġ", " ")
        return result

    def _ntd(self, ids: list[int], max_support: Any = None) -> dict[str, Any]:
        err = _in_range(max_support=max_support)
        return err or self._with_tokens(self.engine.ntd(prompt_ids=ids, max_support=max_support))

    def _infgram_prob(self, ids: list[int]) -> dict[str, Any]:
        if not ids:
            return {"error": "Please provide a non-empty query!"}
        result = self.engine.infgram_prob(prompt_ids=ids[:-1], cont_id=ids[-1])
        if "suffix_len" in result:
            n = result["suffix_len"]
            result["longest_suffix"] = self.tok.decode(ids[len(ids) - 1 - n:len(ids) - 1])
        return result  # type: ignore[no-any-return]

    def _infgram_ntd(self, ids: list[int], max_support: Any = None) -> dict[str, Any]:
        err = _in_range(max_support=max_support)
        if err:
            return err
        result = self._with_tokens(self.engine.infgram_ntd(prompt_ids=ids,
                                                           max_support=max_support))
        if "suffix_len" in result:
            result["longest_suffix"] = self.tok.decode(ids[len(ids) - result["suffix_len"]:])
        return result

    def spans(self, token_ids: list[int], cnf: list[list[list[int]]]) -> list[tuple[str, Any]]:
        """A document's ``spans``: the phrases cut out clause by clause, phrase by phrase."""
        pieces: list[tuple[list[int], str | None]] = [(token_ids, None)]
        for c, clause in enumerate(cnf):
            for needle in clause:
                pieces = [q for p in pieces
                          for q in ([p] if p[1] is not None else _labelled(p[0], needle, str(c)))]
        return [(self.tok.decode(ids), label) for ids, label in pieces]

    def _searched(self, result: dict[str, Any], cnf: list[list[list[int]]]) -> dict[str, Any]:
        if "error" in result:
            return result
        result["message"] = ("0 occurrences found" if result["cnt"] == 0 else
                             f"{'Approximately ' if result['approx'] else ''}{result['cnt']} "
                             "occurrences found. Displaying the documents of occurrences "
                             f"#{result['idxs']}")
        for doc in result["documents"]:
            doc["spans"] = self.spans(doc["token_ids"], cnf)
        return result

    def _search_docs(self, ids: list[int], maxnum: Any = None,
                     max_disp_len: Any = None) -> dict[str, Any]:
        err = _in_range(maxnum=maxnum, max_disp_len=max_disp_len)
        return err or self._searched(self.engine.search_docs(
            input_ids=ids, maxnum=maxnum, max_disp_len=max_disp_len), [[ids]] if ids else [])

    def _search_docs_cnf(self, cnf: Any, maxnum: Any = None, max_disp_len: Any = None,
                         max_clause_freq: Any = None, max_diff_tokens: Any = None
                         ) -> dict[str, Any]:
        err = _in_range(maxnum=maxnum, max_disp_len=max_disp_len,
                        max_clause_freq=max_clause_freq, max_diff_tokens=max_diff_tokens)
        return err or self._searched(self.engine.search_docs_cnf(
            cnf=cnf, maxnum=maxnum, max_disp_len=max_disp_len, max_clause_freq=max_clause_freq,
            max_diff_tokens=max_diff_tokens), cnf)

    def _find(self, ids: list[int]) -> dict[str, Any]:
        return self.engine.find(input_ids=ids)  # type: ignore[no-any-return]

    def _find_cnf(self, cnf: Any, max_clause_freq: Any = None,
                  max_diff_tokens: Any = None) -> dict[str, Any]:
        err = _in_range(max_clause_freq=max_clause_freq, max_diff_tokens=max_diff_tokens)
        return err or self.engine.find_cnf(cnf=cnf, max_clause_freq=max_clause_freq,
                                           max_diff_tokens=max_diff_tokens)

    def _shown(self, result: dict[str, Any], cnf: list[list[list[int]]]) -> dict[str, Any]:
        if "error" not in result:
            result["spans"] = self.spans(result["token_ids"], cnf)
        return result

    def _get_doc_by_rank(self, ids: list[int], s: Any, rank: Any,
                         max_disp_len: Any = None) -> dict[str, Any]:
        err = _in_range(max_disp_len=max_disp_len)
        return err or self._shown(self.engine.get_doc_by_rank(
            s=s, rank=rank, max_disp_len=max_disp_len), [[ids]] if ids else [])

    def _get_doc_by_ptr(self, cnf: Any, s: Any, ptr: Any,
                        max_disp_len: Any = None) -> dict[str, Any]:
        err = _in_range(max_disp_len=max_disp_len)
        return err or self._shown(self.engine.get_doc_by_ptr(
            s=s, ptr=ptr, max_disp_len=max_disp_len), cnf)
