// anygram web page: plain JS, no build step. Talks to the JSON API under /v1/.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { indexes: {}, searchOffset: 0, lastQuery: null, shown: new Set() };

  // ------------------------------------------------------------------ helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "style") node.style.cssText = v;  // the CSSOM: allowed by style-src 'self'
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // Whitespace made visible in token labels: " the" -> "␣the".
  const visible = (s) => (s === "" ? "∅" : s.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥"));
  const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n));
  const pct = (p) => (p === null || p === undefined ? "n/a" : (100 * p).toPrecision(3) + "%");

  class ApiError extends Error {
    constructor(body) {
      super(body && body.error ? body.error : "request failed");
      this.body = body;
    }
  }

  async function api(path, payload) {
    const init = payload === undefined
      ? { headers: { Accept: "application/json" } }
      : { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(payload) };
    const res = await fetch(path, init);
    let body;
    try { body = await res.json(); } catch (e) { body = { error: `HTTP ${res.status}` }; }
    if (!res.ok || (body && body.ok === false)) throw new ApiError(body);
    return body;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function currentIndex() { return state.indexes[$("index").value]; }
  function mode() { return $("mode-ids").checked ? "ids" : "text"; }
  function has(op) { const ix = currentIndex(); return !!ix && ix.operations.includes(op); }

  function parseIds(text) {
    const parts = text.split(/[\s,]+/).filter(Boolean);
    const ids = parts.map((p) => Number(p));
    if (ids.some((x) => !Number.isInteger(x))) {
      throw new Error("token ids must be integers separated by commas or spaces, e.g. 1,2,3");
    }
    return ids;
  }

  function queryPayload() {
    const q = $("query").value;
    return mode() === "ids" ? { query_ids: parseIds(q) } : { query: q };
  }

  function tokenChips(container, tokens, ids, highlightFrom) {
    container.replaceChildren();
    ids.forEach((id, i) => {
      const label = tokens ? visible(tokens[i]) : String(id);
      const chip = el("span", { class: "tok" + (i >= highlightFrom ? " in-suffix" : ""),
                                title: `token id ${id}` }, label);
      container.append(chip);
    });
    if (!ids.length) container.append(el("span", { class: "muted small" }, "(empty query)"));
  }

  function bars(container, entries, total) {
    container.replaceChildren();
    const max = Math.max(1, ...entries.map((e) => e.count));
    for (const e of entries) {
      const label = e.token !== undefined && e.token !== null ? visible(e.token) : String(e.token_id);
      container.append(el("div", { class: "bar-row", title: `token id ${e.token_id}` },
        el("span", { class: "bar-label" }, label),
        el("span", { class: "bar-track" },
          el("span", { class: "bar", style: `width:${(100 * e.count / max).toFixed(2)}%;display:block` })),
        el("span", { class: "bar-value" }, `${fmt(e.count)} · ${pct(total ? e.count / total : null)}`)));
    }
    if (!entries.length) container.append(el("p", { class: "muted small" }, "no next tokens"));
  }

  // ------------------------------------------------------------------ renderers

  // A result card is shown once a request of the current run has filled it (see run()).
  function filled(cardId) {
    state.shown.add(cardId);
    $(cardId).hidden = false;
    $("results").hidden = false;
  }

  function renderCount(r) {
    filled("card-count");
    const v = $("count-value");
    v.textContent = fmt(r.count);
    v.dataset.count = String(r.count);
    $("count-approx").textContent = r.approx ? "(estimate)" : (r.clauses !== undefined ? "matches" : "occurrences");
    if (r.token_ids.length && Array.isArray(r.token_ids[0])) {
      renderClauses($("count-tokens"), r);
      $("count-meta").textContent = `${r.token_ids.length} clause(s) · ${r.latency_ms} ms`;
    } else {
      tokenChips($("count-tokens"), r.tokens, r.token_ids, Infinity);
      $("count-meta").textContent = `${r.token_ids.length} token(s) · ${r.latency_ms} ms`;
    }
  }

  // A CNF query: its clauses (AND) of phrases (OR), each phrase coloured like its matches.
  function renderClauses(container, r) {
    container.replaceChildren();
    r.token_ids.forEach((clause, i) => {
      if (i) container.append(el("span", { class: "op" }, "AND"));
      clause.forEach((phrase, j) => {
        if (j) container.append(el("span", { class: "op" }, "OR"));
        const label = r.clauses ? visible(r.clauses[i][j]) : phrase.join(",");
        container.append(el("mark", { class: `tok c${i % 4}`, title: `clause ${i + 1}: ids ${phrase.join(",")}` }, label));
      });
    });
  }

  function renderNtd(r) {
    filled("card-ntd");
    $("ntd-meta").textContent =
      `${fmt(r.prompt_count)} occurrence(s) · ${fmt(r.distinct_next_tokens)} distinct next token(s)` +
      (r.end_count ? ` · ${fmt(r.end_count)} at a document end` : "") +
      (r.approx ? " · approximate" : "") + ` · ${r.latency_ms} ms`;
    bars($("ntd-bars"), r.next_tokens, r.prompt_count);
  }

  function renderInfgram(r) {
    filled("card-infgram");
    const n = r.token_ids.length;
    tokenChips($("infgram-tokens"), r.tokens, r.token_ids, n - r.suffix_len);
    $("infgram-meta").textContent = r.suffix_len
      ? `Longest matching suffix: ${r.suffix_len} of ${n} token(s), ${fmt(r.prompt_count)} occurrence(s).`
      : "No token of the query's end occurs: the ∞-gram backs off to the unigram distribution.";
    bars($("infgram-bars"), r.next_tokens, r.prompt_count);
  }

  function renderInfgramProb(r) {
    filled("card-infgram");
    const box = $("infgram-prob");
    const token = r.cont_token !== null && r.cont_token !== undefined ? visible(r.cont_token) : `#${r.cont_id}`;
    box.replaceChildren(
      "P(", el("strong", {}, token), " | suffix) = ", el("strong", {}, pct(r.prob)),
      ` (${fmt(r.cont_count)} / ${fmt(r.prompt_count)}, suffix of ${r.suffix_len} token(s))`);
    box.hidden = false;
  }

  function renderHits(r, append) {
    const list = $("docs-hits");
    if (!append) list.replaceChildren();
    const total = r.total_hits !== undefined ? r.total_hits : r.count;
    $("docs-meta").textContent = `${fmt(r.count)} ${r.total_hits !== undefined ? "match(es)" : "occurrence(s)"}` +
      (r.approx ? " (estimate)" : "") +
      (r.hits.length ? ` · showing ${fmt(r.offset + 1)}–${fmt(r.offset + r.hits.length)} of ${fmt(total)}` : "") +
      ` · ${r.latency_ms} ms`;
    for (const h of r.hits) {
      const text = el("p", { class: "hit-text" });
      if (h.spans) {
        for (const s of h.spans) {
          text.append(s.clause === null ? document.createTextNode(s.text)
            : el("mark", { class: `c${s.clause % 4}${s.hit ? " hit" : ""}` }, s.text));
        }
      } else {
        text.textContent = (h.token_ids || []).join(" ");
      }
      const before = h.start ? "… " : "";
      const after = h.token_ids && h.doc_len !== undefined && h.start + h.token_ids.length < h.doc_len ? " …" : "";
      if (before) text.prepend(before);
      if (after) text.append(after);
      const meta = [`document ${h.doc_id}`];
      if (h.doc_len !== undefined) meta.push(`${fmt(h.doc_len)} tokens`);
      if (h.metadata && h.metadata.path) meta.push(`${h.metadata.path}${h.metadata.linenum !== undefined ? ":" + h.metadata.linenum : ""}`);
      list.append(el("li", {}, el("div", { class: "hit-meta" }, meta.join(" · ")), text));
    }
    const more = $("docs-more");
    more.hidden = r.next_offset === null || r.next_offset === undefined;
    state.searchOffset = r.next_offset;
    filled("card-docs");
  }

  // Longest match: each token coloured by a length (∞-gram context, or creativity), in the
  // bins and colours of `anygram color` and `anygram eval --html` (anygram.tools.render.BINS:
  // label, lengths [lo, hi), background).
  const LEN_BINS = [["0", 0, 1, "#f2f2f2"], ["1", 1, 2, "#fde0c5"], ["2-3", 2, 4, "#facba6"],
                    ["4-7", 4, 8, "#f8b58b"], ["8-15", 8, 16, "#c0e0a0"],
                    ["16-31", 16, 32, "#7fc97f"], ["32+", 32, Infinity, "#3a9a5a"]];
  const binOf = (n) => LEN_BINS.findIndex(([, lo, hi]) => n >= lo && n < hi);
  const binChip = (i, attrs, label) =>
    el("span", { ...attrs, class: "tok bin", "data-bin": String(i),
                 style: `background-color:${LEN_BINS[i][3]}` }, label);

  function renderCovered(r) {
    const box = $("longest-tokens");
    box.replaceChildren();
    const covered = new Array(r.token_ids.length).fill(false);
    for (const [a, b] of r.contamination.covered) for (let i = a; i < b; i++) covered[i] = true;
    r.token_ids.forEach((id, i) => {
      const label = r.tokens ? visible(r.tokens[i]) : String(id);
      box.append(el("span", { class: "tok" + (covered[i] ? " covered" : ""),
                              "data-covered": covered[i] ? "1" : "0",
                              title: `token id ${id}` + (covered[i]
                                ? ": inside an n-gram found in the corpus" : "") }, label));
    });
    if (!r.token_ids.length) box.append(el("span", { class: "muted small" }, "(empty query)"));
    $("longest-legend").replaceChildren(el("span", { class: "muted" }, "tokens:"),
      el("span", { class: "tok covered" }, "covered"), el("span", { class: "tok" }, "not"));
    const c = r.contamination;
    $("longest-meta").textContent =
      `${pct(c.coverage)} of the tokens are inside a ${c.n}-gram found in the corpus` +
      ` · longest match ${c.longest_match} token(s), ${fmt(c.count)} occurrence(s)` +
      (c.docs.length ? `, in document(s) ${c.docs.join(", ")}` : "") + ` · ${c.latency_ms} ms`;
    filled("card-longest");
  }

  function renderLongest() {
    const r = state.longest;
    if (!r) return;
    if ($("longest-covered").checked && r.contamination) { renderCovered(r); return; }
    const byCreativity = $("longest-creativity").checked && r.lengths;
    const lengths = byCreativity ? r.lengths : r.suffix_len;
    const box = $("longest-tokens");
    box.replaceChildren();
    r.token_ids.forEach((id, i) => {
      const label = r.tokens ? visible(r.tokens[i]) : String(id);
      const n = lengths[i];
      const p = r.prob[i];
      const title = byCreativity
        ? `token id ${id}: the longest match starting here is ${n} token(s)`
        : `token id ${id}: ${n} token(s) before it occur; P(token | them) = ${pct(p)} (${fmt(r.cont_count[i])} / ${fmt(r.prompt_count[i])})`;
      box.append(binChip(binOf(n), { "data-len": String(n), title }, label));
    });
    if (!r.token_ids.length) box.append(el("span", { class: "muted small" }, "(empty query)"));
    const legend = $("longest-legend");
    legend.replaceChildren(el("span", { class: "muted" }, "tokens:"),
      ...LEN_BINS.map(([text], i) => binChip(i, {}, text)));
    const n = lengths.length;
    const mean = n ? lengths.reduce((a, b) => a + b, 0) / n : 0;
    $("longest-meta").textContent = (byCreativity
      ? "Length of the longest corpus match starting at each token"
      : "Length of the longest suffix of the tokens before each token that occurs in the corpus (its ∞-gram context)") +
      ` · mean ${mean.toFixed(1)}, max ${n ? Math.max(...lengths) : 0} · ${r.latency_ms} ms`;
    filled("card-longest");
  }

  async function fetchCovered() {
    const r = state.longest;
    if (!r || !has("contamination")) return;
    const n = Math.max(1, parseInt($("covered-n").value, 10) || 13);
    try {
      const c = await api(`/v1/${encodeURIComponent($("index").value)}/contamination`,
                          { ...r.payload, n });
      r.contamination = { ...c, n };
      showError("");
    } catch (e) {
      showError(e.message);
    }
    renderLongest();
  }

  async function fetchLongest(base, payload) {
    const jobs = [api(`${base}/infgram-text`, payload)];
    if (has("creativity")) jobs.push(api(`${base}/creativity`, payload));
    const [text, creativity] = await Promise.all(jobs);
    state.longest = { ...text, lengths: creativity ? creativity.lengths : null, payload };
    $("longest-creativity").disabled = !creativity;
    $("longest-covered").disabled = !has("contamination");
    if ($("longest-covered").checked) await fetchCovered();
    renderLongest();
  }

  // ------------------------------------------------------------------ actions

  function isCnf(text) { return mode() === "text" && (/ AND | OR /).test(text); }

  async function run(event) {
    if (event) event.preventDefault();
    const ix = currentIndex();
    if (!ix) return;
    showError("");
    let payload;
    try { payload = queryPayload(); } catch (e) {
      showError(e.message);
      $("results").hidden = true;  // the cards hold the previous query's answers
      return;
    }
    state.lastQuery = payload;
    const base = `/v1/${encodeURIComponent(ix.name)}`;
    const cnf = isCnf($("query").value) && has("cnf/count");
    const runBtn = $("run");
    runBtn.disabled = true;
    document.body.classList.add("busy");
    try {
      const jobs = [];
      if (cnf) {
        jobs.push(api(`${base}/cnf/count`, payload).then(renderCount));
      } else {
        jobs.push(api(`${base}/count`, payload).then(renderCount));
        jobs.push(api(`${base}/ntd`, { ...payload, top: 20 }).then(renderNtd));
        jobs.push(api(`${base}/infgram-ntd`, { ...payload, top: 10 }).then(renderInfgram));
        const cont = $("cont").value;
        $("infgram-prob").hidden = true;
        if (cont !== "") {
          const c = mode() === "ids" ? { cont_id: Number(cont) } : { cont };
          jobs.push(api(`${base}/infgram-prob`, { ...payload, ...c }).then(renderInfgramProb));
        }
      }
      state.shown = new Set();
      state.longest = null;
      const empty = payload.query === "" || (payload.query_ids && !payload.query_ids.length);
      if (!cnf && !empty && has("infgram-text")) jobs.push(fetchLongest(base, payload));
      const searchRoute = cnf ? "cnf/search" : "search";
      if (has(searchRoute) && !empty) {
        jobs.push(api(`${base}/${searchRoute}`, { ...payload }).then((r) => renderHits(r, false)));
      }
      const results = await Promise.allSettled(jobs);
      const failed = results.find((x) => x.status === "rejected");
      if (failed) showError(failed.reason.message);
      // Only the cards this run filled stay: none before a query, none (no stale answers of
      // the previous query either) where its requests failed.
      for (const card of document.querySelectorAll("#results > .card")) {
        card.hidden = !state.shown.has(card.id);
      }
      $("results").hidden = state.shown.size === 0;
      const url = new URL(window.location.href);
      url.searchParams.set("index", ix.name);
      url.searchParams.set(mode() === "ids" ? "ids" : "q", $("query").value);
      url.searchParams.delete(mode() === "ids" ? "q" : "ids");
      if (!cnf && $("cont").value !== "") url.searchParams.set("cont", $("cont").value);
      else url.searchParams.delete("cont");
      history.replaceState(null, "", url);
    } finally {
      runBtn.disabled = false;
      document.body.classList.remove("busy");
      document.body.dataset.ready = "1";
    }
  }

  async function more() {
    const ix = currentIndex();
    if (!ix || state.searchOffset === null || !state.lastQuery) return;
    const cnf = isCnf($("query").value) && has("cnf/search");
    try {
      const r = await api(`/v1/${encodeURIComponent(ix.name)}/${cnf ? "cnf/search" : "search"}`,
        { ...state.lastQuery, offset: state.searchOffset });
      renderHits(r, true);
    } catch (e) { showError(e.message); }
  }

  function onIndexChange() {
    const ix = currentIndex();
    if (!ix) return;
    const tok = ix.tokenizer ? (ix.tokenizer.kind || "tokenizer") : "no tokenizer (ids only)";
    $("index-info").textContent =
      `${fmt(ix.num_tokens)} tokens · ${fmt(ix.num_docs)} documents · ${ix.num_shards} shard(s) · ` +
      `${ix.token_dtype} · ${tok}`;
    const textOk = !!ix.tokenizer;
    $("mode-text").disabled = !textOk;
    if (!textOk) $("mode-ids").checked = true;
    noteSpaces();
    const cnfHint = $("cnf-hint");
    cnfHint.hidden = false;
    cnfHint.textContent = has("cnf/count")
      ? "Text queries with AND / OR (OR binds tighter) search for documents matching all clauses."
      : "AND / OR queries are not available on this server: text is matched literally.";
    cnfHint.hidden = !textOk;
  }

  // Spaces at the ends of a text query are part of it (with GPT-2-style tokenizers " x" and
  // "x" are different tokens) but hard to see in the box: say so, with the spaces shown.
  function noteSpaces() {
    const q = $("query").value;
    const note = $("space-note");
    const lead = /^\s/.test(q), trail = /\s$/.test(q);
    note.hidden = mode() !== "text" || !(lead || trail) || q.trim() === "";
    $("query").classList.toggle("lead-space", !note.hidden && lead);
    $("query").classList.toggle("trail-space", !note.hidden && trail);
    if (note.hidden) return;
    const where = lead && trail ? "starts and ends" : lead ? "starts" : "ends";
    note.replaceChildren(`The query ${where} with a space, which is part of it: `,
      el("code", { class: "spaced" }, visible(q)),
      " (with GPT-2-style tokenizers “ x” and “x” are different queries).");
  }

  async function init() {
    try {
      const r = await api("/v1/indexes");
      const select = $("index");
      for (const ix of r.indexes) {
        state.indexes[ix.name] = ix;
        select.append(el("option", { value: ix.name }, ix.name));
      }
      const params = new URLSearchParams(window.location.search);
      if (params.get("index") && state.indexes[params.get("index")]) select.value = params.get("index");
      onIndexChange();
      if (params.has("ids")) { $("mode-ids").checked = true; $("query").value = params.get("ids"); }
      else if (params.has("q")) { $("query").value = params.get("q"); }
      if (params.has("cont")) $("cont").value = params.get("cont");
      noteSpaces();
      document.body.dataset.ready = "1";
      if (params.has("q") || params.has("ids")) run();
    } catch (e) {
      showError(`could not list the indexes: ${e.message}`);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("query-form").addEventListener("submit", run);
    $("query").addEventListener("input", noteSpaces);
    for (const id of ["mode-text", "mode-ids"]) $(id).addEventListener("change", noteSpaces);
    $("index").addEventListener("change", onIndexChange);
    $("docs-more").addEventListener("click", more);
    for (const id of ["longest-suffix", "longest-creativity"]) $(id).addEventListener("change", renderLongest);
    $("longest-covered").addEventListener("change", fetchCovered);
    $("covered-n").addEventListener("change", () => { if ($("longest-covered").checked) fetchCovered(); });
    init();
  });
})();
