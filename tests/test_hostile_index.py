"""A damaged or hostile index gives a typed error or the same answers: never a crash, never
an answer that changed without ``verify`` saying so.

Each mutation is applied to a copy of a small index (a bytes-tokenized u8 index with
metadata, and a u16 index of word ids; both with several shards and a takedown) and, for the
data files, to a copy without its manifest (as infini-gram's indexes come). Every query kind
and ``verify`` then run on it in a subprocess (``hostile_probe.py``), so a segfault fails the
test instead of killing pytest. The damaged values are placed where the open-time sample does
not look, so the kernels' own checks are what stops them.

Dev aid: ``ANYGRAM_BOUNDSCHECK=1`` runs the probes with ``NUMBA_BOUNDSCHECK=1`` (every kernel
recompiled with bounds checks, in a private cache: minutes), so an out-of-bounds access that
happens not to crash shows up as an untyped ``IndexError``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from anygram import Engine, build_index
from anygram import takedown as td
from anygram.index import checks
from anygram.index import sample as search_sample
from anygram.index.build import build_index_from_ids

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))
from hostile_probe import WORD_BASE, WORDS, queries  # noqa: E402

Mutation = Callable[[Path, int], None]

# ----------------------------------------------------------------------------- fixtures


def _sentences(rng: random.Random, n: int) -> list[list[str]]:
    return [[rng.choice(WORDS) for _ in range(rng.randint(0, 30))] for _ in range(n)]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per kind, a sound index with two documents taken down."""
    root = tmp_path_factory.mktemp("hostile")
    docs = _sentences(random.Random(15), 300)
    with open(root / "corpus.jsonl", "w") as f:
        for i, words in enumerate(docs):
            f.write(json.dumps({"text": " ".join(words), "n": i}) + "\n")
    build_index(root / "corpus.jsonl", root / "text", shard_tokens=5000, progress=False)
    build_index_from_ids([[WORD_BASE + WORDS.index(w) for w in d] for d in docs], root / "words",
                         vocab_size=WORD_BASE + len(WORDS), shard_tokens=2500)
    for kind in ("text", "words"):
        td.take_down(root / kind, [3, 17])
    return {"text": root / "text", "words": root / "words"}


def _run_probe(kind: str, dirs: list[Path]) -> dict[str, dict]:
    """Probe results by directory; a directory whose probe killed the process gets
    ``{"crash": returncode}`` and the rest are probed again in a new process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if os.environ.get("ANYGRAM_BOUNDSCHECK") == "1":
        env.update(NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(dirs[0].parent / "numba-cache"))
    results: dict[str, dict] = {}
    todo = [str(d) for d in dirs]
    while todo:
        try:
            proc = subprocess.run([sys.executable, str(HERE / "hostile_probe.py"), kind, *todo],
                                  capture_output=True, text=True, env=env, timeout=900)
            out, rc = proc.stdout, proc.returncode
        except subprocess.TimeoutExpired as e:  # a hang: blame the directory being probed
            out, rc = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (
                e.stdout or ""), "timeout"
        begun = None
        for line in out.splitlines():
            if line.startswith("BEGIN "):
                begun = line[6:]
            elif line.startswith("{"):
                got = json.loads(line)
                results[got["dir"]] = got
                begun = None
        if rc == 0:
            break
        assert begun is not None, f"the probe failed outside a directory: {proc.stderr[-2000:]}"
        results[begun] = {"crash": rc}
        todo = todo[todo.index(begun) + 1:]
    return results


# ----------------------------------------------------------------------------- mutations


def _shard_files(d: Path) -> list[str]:
    return sorted(p.name.split(".")[1] for p in d.glob("tokenized.*"))


def _ptr_width(d: Path, w: int, shard: str) -> int:
    return (d / f"table.{shard}").stat().st_size // ((d / f"tokenized.{shard}").stat().st_size // w)


def _unsampled(n: int) -> list[int]:
    """Ranks ``r`` such that neither ``r`` nor ``r - 1`` starts a pair the open-time sample
    checks (and not the first or last rank): damage there is left to the kernels."""
    sampled = {r for start, stop, step in checks._spread(n - 1, checks.OPEN_SAMPLES)
               for r in range(start, stop, step)}
    return [r for r in range(2, n - 2) if r not in sampled and r - 1 not in sampled
            and r + 1 not in sampled]


def _edit_table(d: Path, w: int, edit: Callable[[np.ndarray, list[int]], None]) -> None:
    """Apply ``edit(pointers, unsampled ranks)`` to the last shard's table, in place."""
    shard = _shard_files(d)[-1]
    k = _ptr_width(d, w, shard)
    path = d / f"table.{shard}"
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, k)
    wide = np.zeros((raw.shape[0], 8), dtype=np.uint8)
    wide[:, :k] = raw
    ptrs = wide.view("<u8").reshape(-1).copy()
    edit(ptrs, _unsampled(ptrs.shape[0]))
    ptrs.view(np.uint8).reshape(-1, 8)[:, :k].tofile(path)


def _edit_u64(name: str, edit: Callable[[np.ndarray], None]) -> Mutation:
    def mutate(d: Path, w: int) -> None:
        path = d / name
        arr = np.fromfile(path, dtype="<u8")
        edit(arr)
        arr.tofile(path)
    return mutate


def _truncate(name: str, size: Callable[[int], int]) -> Mutation:
    def mutate(d: Path, w: int) -> None:
        os.truncate(d / name, size((d / name).stat().st_size))
    return mutate


def _fill(name: str, byte: int) -> Mutation:
    def mutate(d: Path, w: int) -> None:
        (d / name).write_bytes(bytes([byte]) * (d / name).stat().st_size)
    return mutate


def _flip(name: str) -> Mutation:
    def mutate(d: Path, w: int) -> None:
        data = bytearray((d / name).read_bytes())
        data[len(data) // 2 + 1] ^= 0x5A
        (d / name).write_bytes(bytes(data))
    return mutate


def _past_end(ptrs: np.ndarray, ranks: list[int]) -> None:
    ptrs[ranks[::7]] = 0xFFFFFE  # the reproduction: a 3-byte 0xFFFFFE


def _odd(ptrs: np.ndarray, ranks: list[int]) -> None:
    ptrs[ranks[::7]] += 1


def _swapped(ptrs: np.ndarray, ranks: list[int]) -> None:
    r = ranks[len(ranks) // 2]
    ptrs[[r, r + 1]] = ptrs[[r + 1, r]]


def _duplicated(ptrs: np.ndarray, ranks: list[int]) -> None:
    r = ranks[len(ranks) // 3]
    ptrs[r + 1] = ptrs[r]


def _swap_offsets(arr: np.ndarray) -> None:
    arr[[5, 6]] = arr[[6, 5]]


def _huge_last(arr: np.ndarray) -> None:
    arr[-1] = 1 << 40


def _huge_fifth(arr: np.ndarray) -> None:
    arr[5] = 1 << 40


#: Damage to the data files: (name, mutation, applies to the text index only).
DATA: list[tuple[str, Mutation, bool]] = [
    ("tokenized cut by a byte", _truncate("tokenized.1", lambda n: n - 1), False),
    ("tokenized cut in half", _truncate("tokenized.1", lambda n: n // 2), False),
    ("tokenized emptied", _truncate("tokenized.0", lambda n: 0), False),
    ("table cut by a byte", _truncate("table.1", lambda n: n - 1), False),
    ("table emptied", _truncate("table.0", lambda n: 0), False),
    ("offset cut by 3 bytes", _truncate("offset.0", lambda n: n - 3), False),
    ("offset cut by one entry", _truncate("offset.0", lambda n: n - 8), False),
    ("table all zeros", _fill("table.0", 0), False),
    ("table all 0xff", _fill("table.1", 0xFF), False),
    ("tokenized all zeros", _fill("tokenized.1", 0), False),
    ("table byte flipped", _flip("table.0"), False),
    ("pointers past the end", lambda d, w: _edit_table(d, w, _past_end), False),
    ("odd pointers", lambda d, w: _edit_table(d, w, _odd), False),
    ("adjacent pointers swapped", lambda d, w: _edit_table(d, w, _swapped), False),
    ("a pointer duplicated", lambda d, w: _edit_table(d, w, _duplicated), False),
    ("offsets out of order", _edit_u64("offset.0", _swap_offsets), False),
    ("an offset past the end", _edit_u64("offset.1", _huge_last), False),
    ("a metadata offset past the end", _edit_u64("metaoff.0", _huge_fifth), True),
    ("metadata offsets out of order", _edit_u64("metaoff.0", _swap_offsets), True),
    ("metaoff cut by one entry", _truncate("metaoff.0", lambda n: n - 8), True),
    ("metadata cut in half", _truncate("metadata.0", lambda n: n // 2), True),
]
#: Changes the corpus, not the structure: only a checksum can tell (so not without one).
TOKENS_CHANGED = ("a token byte flipped", _flip("tokenized.0"), False)


def _json_edit(name: str, edit: Callable[[dict], object]) -> Mutation:
    """Edit a JSON file of the index in place (``edit`` returns None) or replace it."""
    def mutate(d: Path, w: int) -> None:
        obj = json.loads((d / name).read_text())
        new = edit(obj)
        (d / name).write_text(json.dumps(obj if new is None else new))
    return mutate


def _manifest(edit: Callable[[dict], object]) -> Mutation:
    return _json_edit("manifest.json", edit)


def _record(edit: Callable[[dict], object]) -> Mutation:
    return _json_edit("takedown.json", edit)


def _nested(d: Path, w: int) -> None:
    (d / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)


def _outside(d: Path) -> Path:
    """A directory beside the index (what a hostile path would reach)."""
    out = d.parent / f"{d.name}-outside"
    out.mkdir(exist_ok=True)
    return out


def _link_out(name: str) -> Mutation:
    def mutate(d: Path, w: int) -> None:
        target = _outside(d) / name
        shutil.copyfile(d / name, target)
        (d / name).unlink()
        (d / name).symlink_to(target)
    return mutate


def _link_in(d: Path, w: int) -> None:
    (d / "table.0").rename(d / "table.0.real")
    (d / "table.0").symlink_to("table.0.real")


def _fifo(name: str) -> Mutation:
    def mutate(d: Path, w: int) -> None:
        (d / name).unlink()
        os.mkfifo(d / name)
    return mutate


def _device(d: Path, w: int) -> None:
    (d / "tokenized.0").unlink()
    (d / "tokenized.0").symlink_to("/dev/zero")


def _shard_twice(m: dict) -> None:
    m["shards"].append(m["shards"][0])


def _no_shards(m: dict) -> None:
    m["shards"] = []


def _shard_escapes(m: dict) -> None:
    m["shards"][0]["name"] = "x/../../dir/y"


def _files_absolute(m: dict) -> None:
    m["shards"][0]["files"]["/etc/passwd"] = {"size": 1}


def _tokenizer_up(m: dict) -> None:
    m["tokenizer"] = {"kind": "hf", "file": "../SECRET.json", "sha256": None}


def _tokenizer_absolute(m: dict) -> None:
    m["tokenizer"] = {"kind": "hf", "file": "/etc/hostname", "sha256": None}


def _shard_missing(m: dict) -> None:
    m["shards"].pop()


def _docs_miscounted(m: dict) -> None:
    m["shards"][0]["num_docs"] += 1
    m["shards"][0]["num_tokens"] -= 1


def _generation_escapes(r: dict) -> None:
    r["generation"] = "x/../../dir"


def _ids_not_ints(r: dict) -> None:
    r["doc_ids"] = ["a"]


def _ids_unsorted(r: dict) -> None:
    r["doc_ids"] = r["doc_ids"][::-1]


def _id_out_of_range(r: dict) -> None:
    r["doc_ids"] = r["doc_ids"] + [10**6]


def _other_takedown(d: Path, w: int) -> None:
    """The takedown index of another set of documents, under the record's name."""
    r = json.loads((d / "takedown.json").read_text())
    shutil.rmtree(d / f"takedown-{r['generation']}")
    build_index_from_ids([[1, 2, 3], [4]], d / f"takedown-{r['generation']}", vocab_size=255)


def _takedown_out(d: Path, w: int) -> None:
    r = json.loads((d / "takedown.json").read_text())
    gen = d / f"takedown-{r['generation']}"
    target = _outside(d) / gen.name
    shutil.copytree(gen, target)
    shutil.rmtree(gen)
    gen.symlink_to(target)


def _rename_partial(d: Path, w: int) -> None:
    d.rename(d.with_name(d.name + ".partial"))
    d.mkdir()  # the probe opens the .partial name (see _target)


def _progress(d: Path, w: int) -> None:
    (d / "progress.json").write_text("{}")


#: Hostile or inconsistent descriptions: (name, mutation, the error opening must raise);
#: those naming metadata apply to the text index only (the other has none).
REFUSED: list[tuple[str, Mutation, str]] = [
    ("a shard listed twice", _manifest(_shard_twice), "IndexFormatError"),
    ("no shards", _manifest(_no_shards), "IndexFormatError"),
    ("a manifest that is a list", _manifest(lambda m: [m]), "IndexFormatError"),
    ("a manifest nested 100,000 deep", _nested, "IndexFormatError"),
    ("a shard name leaving the directory", _manifest(_shard_escapes), "IndexFormatError"),
    ("a files key with an absolute path", _manifest(_files_absolute), "IndexFormatError"),
    ("a tokenizer file above the index", _manifest(_tokenizer_up), "IndexFormatError"),
    ("a tokenizer file at an absolute path", _manifest(_tokenizer_absolute),
     "IndexFormatError"),
    ("a shard missing from the manifest", _manifest(_shard_missing), "IndexFormatError"),
    ("document counts that disagree", _manifest(_docs_miscounted), "IndexFormatError"),
    ("a manifest that is a FIFO", _fifo("manifest.json"), "IndexFormatError"),
    ("a table linked outside", _link_out("table.0"), "IndexFormatError"),
    ("a metadata file linked outside", _link_out("metadata.0"), "IndexFormatError"),
    ("a token file that is a FIFO", _fifo("tokenized.0"), "IndexFormatError"),
    ("a token file linked to /dev/zero", _device, "IndexFormatError"),
    ("a *.partial directory", _rename_partial, "IncompleteIndexError"),
    ("progress.json beside the manifest", _progress, "IncompleteIndexError"),
    ("a takedown generation leaving the directory", _record(_generation_escapes),
     "IndexFormatError"),
    ("takedown ids that are not ints", _record(_ids_not_ints), "IndexFormatError"),
    ("takedown ids out of order", _record(_ids_unsorted), "IndexFormatError"),
    ("a takedown id past the last document", _record(_id_out_of_range), "IndexFormatError"),
    ("a takedown record that is a list", _record(lambda r: [r]), "IndexFormatError"),
    ("a takedown index of other documents", _other_takedown, "IndexFormatError"),
    ("a takedown index linked outside", _takedown_out, "IndexFormatError"),
    ("a takedown record that is a FIFO", _fifo("takedown.json"), "IndexFormatError"),
]


def _target(d: Path) -> Path:
    """The directory the probe opens (a renamed *.partial one by its new name)."""
    partial = d.with_name(d.name + ".partial")
    return partial if partial.exists() else d


def _copies(pristine: Path, root: Path, cases: list[tuple[str, Mutation]], w: int,
            manifest: bool) -> dict[str, Path]:
    made = {}
    for i, (name, mutate) in enumerate(cases):
        d = root / f"m{i:02d}"
        shutil.copytree(pristine, d, symlinks=True)
        if not manifest:
            (d / "manifest.json").unlink()
        mutate(d, w)
        made[name] = _target(d)
    return made


# ----------------------------------------------------------------------------- tests


def _untyped(result: dict) -> list[str]:
    values = [result.get("open", ""), str(result.get("verify", ""))]
    values += [v for v in result.get("answers", {}).values() if isinstance(v, str)]
    return [v for v in values if v.startswith("untyped:")]


@pytest.mark.parametrize("kind", ["text", "words"])
@pytest.mark.parametrize("manifest", [True, False], ids=["anygram", "no-manifest"])
def test_damaged_data_gives_errors_or_the_same_answers(pristine, tmp_path, kind, manifest):
    """Every data mutation: no crash, no untyped error; an answer that differs from the
    sound index's is allowed only where verify reports the damage, and verify reports every
    one of these (by checksum, or by structure without a manifest)."""
    w = 1 if kind == "text" else 2
    cases = [(n, m) for n, m, text_only in DATA if kind == "text" or not text_only]
    if manifest:
        cases.append(TOKENS_CHANGED[:2])
    sound = _copies(pristine[kind], tmp_path, [("sound", lambda d, w: None)], w, manifest)
    damaged = _copies(pristine[kind], tmp_path / "damaged", cases, w, manifest)
    results = _run_probe(kind, [*sound.values(), *damaged.values()])
    want = results[str(sound["sound"])]
    assert want["open"] == "ok" and want["verify"] is True and not _untyped(want)
    assert not any(str(v).startswith("typed:") for v in want["answers"].values()), want
    problems = []
    for name, d in damaged.items():
        got = results[str(d)]
        if "crash" in got or _untyped(got):
            problems.append(f"{name}: {got.get('crash') or _untyped(got)}")
            continue
        changed = [q for q, a in got["answers"].items()
                   if not str(a).startswith("typed:") and a != want["answers"][q]]
        if got["verify"] is not False:
            problems.append(f"{name}: verify did not report it ({got['verify']})")
        if changed and got["open"] == "ok" and got["verify"] is not False:
            problems.append(f"{name}: silently changed {changed}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", ["text", "words"])
def test_hostile_descriptions_are_refused(pristine, tmp_path, kind):
    """Paths out of the directory, non-regular files, inconsistent manifests and takedown
    records: opening raises the typed error, nothing is followed out, nothing hangs."""
    w = 1 if kind == "text" else 2
    cases = [(n, m) for n, m, _ in REFUSED if kind == "text" or "metadata" not in n]
    made = _copies(pristine[kind], tmp_path, cases, w, manifest=True)
    results = _run_probe(kind, list(made.values()))
    expected = {n: e for n, _, e in REFUSED}
    problems = []
    for name, d in made.items():
        got = results[str(d)]
        if "crash" in got or _untyped(got):
            problems.append(f"{name}: {got.get('crash') or _untyped(got)}")
        elif not got["open"].startswith(f"typed:{expected[name]}:"):
            problems.append(f"{name}: opened as {got['open'][:200]}")
        elif got["verify"] is True:
            problems.append(f"{name}: verify passed it")
    assert not problems, "\n".join(problems)


def test_links_inside_the_directory_change_nothing(pristine, tmp_path):
    made = _copies(pristine["text"], tmp_path, [("sound", lambda d, w: None),
                                                ("linked", _link_in)], 1, manifest=True)
    results = _run_probe("text", list(made.values()))
    sound, linked = (results[str(made[n])] for n in ("sound", "linked"))
    assert linked["open"] == "ok" and linked["answers"] == sound["answers"]


def test_probe_reaches_every_kernel(pristine, tmp_path):
    """The probe's queries run every kernel that Python code calls (the others are helpers
    inlined into these), so the mutations above reach every kernel."""
    from anygram.kernels import analysis, batch, cnf, docs, lm, sample, search

    copy = tmp_path / "words"
    shutil.copytree(pristine["words"], copy)
    for p in copy.glob("sample.*"):  # so the search sample is built (and written) here
        p.unlink()
    eng, plain = Engine.open(copy), Engine.open(copy, search_sample=False)
    for call in queries(eng, plain, lambda s: [WORD_BASE + WORDS.index(x) for x in s.split()]
                        ).values():
        call()
    top_level = {"search": ["find_range", "find_range_cached", "next_token_counts",
                            "sample_next_token_counts", "longest_suffix", "rank_positions"],
                 "docs": ["positions_at", "smallest_positions", "permute", "docs_of",
                          "document_windows"],
                 "cnf": ["phrase_hits", "count_phrase_starts", "verify_anchors",
                         "probe_anchors", "sort_positions", "docs_of_sorted", "mark_ranks",
                         "sweep_marks", "verify_marks", "docs_with_marks"],
                 "analysis": ["suffix_walk", "span_ranges"],
                 "lm": ["_shard_candidates", "_lookup_candidates"],
                 "sample": ["build_sample", "find_range_indexed", "longest_suffix_sampled"],
                 "batch": ["find_many", "find_many_within", "longest_suffix_many",
                           "next_tokens_many"]}
    modules = {"search": search, "docs": docs, "cnf": cnf, "analysis": analysis, "lm": lm,
               "sample": sample, "batch": batch}
    missed = [f"{m}.{k}" for m, names in top_level.items() for k in names
              if not getattr(modules[m], k).signatures]
    assert not missed, f"kernels the probe does not reach: {missed}"


def _edit_sample(edit: Callable[[np.ndarray, np.ndarray, np.ndarray, int], None]) -> Mutation:
    """Rewrite shard 0's search sample with ``edit(keys, lens, ptrs, row)`` applied to a row
    its own load-time spot check does not read, the CRC recomputed: a hostile file passes its
    own checksum."""
    def mutate(d: Path, w: int) -> None:
        path = d / "sample.0"
        raw = path.read_bytes()
        magic, version, stride, m, n, _, *fingerprint = search_sample._HEADER.unpack_from(raw)
        at = search_sample._HEADER_SIZE
        keys = np.frombuffer(raw, np.uint8, n * m, at).reshape(n, m).copy()
        lens = np.frombuffer(raw, np.uint8, n, at + n * m).copy()
        ptrs = np.frombuffer(raw, "<i8", n, at + n * m + n).copy()
        edit(keys, lens, ptrs, n // 3)
        body = keys.tobytes() + lens.tobytes() + ptrs.astype("<i8").tobytes()
        header = search_sample._HEADER.pack(magic, version, stride, m, n, zlib.crc32(body),
                                            *fingerprint)
        path.write_bytes(header.ljust(at, b"\0") + body)
    return mutate


def _long_lens(keys, lens, ptrs, row):
    lens[row] = 255  # past the row's 16 bytes


def _ptr_past_end(keys, lens, ptrs, row):
    ptrs[row] = 1 << 40


def _ptr_negative(keys, lens, ptrs, row):
    ptrs[row] = -(1 << 40)


def _key_changed(keys, lens, ptrs, row):
    keys[row] = 0  # in range, out of order: a search it misleads finds out


#: Hostile search samples: (name, mutation). The loader refuses what its header and spot
#: checks show; what they miss, the searches catch (each checks the sample's bracket against
#: the suffix array, falls back to the plain search and drops the sample): the answers never
#: change.
SAMPLES: list[tuple[str, Mutation]] = [
    ("a sample that is a FIFO", _fifo("sample.0")),
    ("a sample cut short", _truncate("sample.0", lambda n: n - 5)),
    ("a sample with a key length past its row", _edit_sample(_long_lens)),
    ("a sample with an offset past the end", _edit_sample(_ptr_past_end)),
    ("a sample with a negative offset", _edit_sample(_ptr_negative)),
    ("a sample with a key out of order", _edit_sample(_key_changed)),
]


@pytest.mark.parametrize("kind", ["text", "words"])
def test_hostile_search_samples_are_not_used(pristine, tmp_path, kind):
    """A search sample (sample.{s}) that is no regular file, does not fit its shard, or whose
    entries point anywhere or sort wrongly: no crash, and the answers do not change."""
    w = 1 if kind == "text" else 2
    made = _copies(pristine[kind], tmp_path, [("sound", lambda d, w: None)] + SAMPLES, w,
                   manifest=True)
    results = _run_probe(kind, list(made.values()))
    want = results[str(made["sound"])]["answers"]
    problems = []
    for name, _ in SAMPLES:
        got = results[str(made[name])]
        if "crash" in got or _untyped(got):
            problems.append(f"{name}: {got.get('crash') or _untyped(got)}")
        elif got["answers"] != want:
            problems.append(f"{name}: the answers changed")
    assert not problems, "\n".join(problems)
