"""Text corpora: the built-in standard-library corpus, local files/folders, or a hub dataset.

Specs accepted by :func:`load_corpus`:

* ``"builtin"`` / ``"builtin:code"`` / ``"builtin:prose"``: built from the installed Python
  standard library, so it exists on every machine with no download.  ``code`` is one document
  per ``.py`` file (about 11 MB for CPython 3.11); ``prose`` is one document per module holding
  its module/class/function docstrings of at least 80 characters (needs ``ast``, about 2 s for
  the whole library); ``builtin`` interleaves them (module 1 code, module 1 prose, module 2
  code, ...), so any ``max_chars`` cap gets both kinds.  Only as many files as the cap needs are
  read, so small caps are fast.
* a local text file, or a folder (searched recursively, hidden folders skipped) of
  ``*.txt *.text *.md *.markdown *.rst *.py *.json *.jsonl`` files: one document per file,
  sorted by path.  Binary (NUL bytes) or non-UTF-8 files are skipped.  Only regular files are
  read: a symbolic link is followed when it leads to a regular file (links are how dataset
  folders are often assembled, and reading writes nothing), while FIFOs, devices and sockets,
  and links to them, are skipped in a folder and refused as a ``--corpus`` file; links to
  folders are not followed.  Each file is read in chunks only as far as the cap still needs,
  so whether it is binary or UTF-8 is judged on the part read.
* ``"hf:NAME"``, ``"hf:NAME:CONFIG"``, each with an optional ``@SPLIT`` (default ``train``): a
  ``datasets`` hub dataset; the ``text`` column, else the first string column.  Honours
  ``HF_HUB_OFFLINE=1`` even when it is set after ``datasets`` was imported.

``max_chars=None`` means no cap: the caller decides (the full builtin corpus is ~13 M chars).
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import functools
import gc
import hashlib
import itertools
import os
import stat
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.errors import ConfigError, InterpError, LoadError

BUILTIN_SPECS = ("builtin", "builtin:code", "builtin:prose")
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".rst", ".py", ".json", ".jsonl"})
MIN_DOCSTRING_CHARS = 80
_SKIP_DIRS = frozenset(
    {"test", "tests", "idlelib", "site-packages", "lib2to3", "ensurepip", "turtledemo"}
)
_SPEC_HELP = (
    "expected 'builtin', 'builtin:code', 'builtin:prose', 'hf:NAME[:CONFIG][@SPLIT]' "
    "or a local file/folder"
)


@dataclass(frozen=True)
class Corpus:
    """A named, ordered collection of non-empty text documents."""

    name: str
    documents: tuple[str, ...]

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 over the documents (length-prefixed, so boundaries count), hex[:16]."""
        h = hashlib.sha256()
        for doc in self.documents:
            data = doc.encode("utf-8", errors="surrogatepass")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return h.hexdigest()[:16]

    @property
    def n_chars(self) -> int:
        return sum(len(d) for d in self.documents)

    def __repr__(self) -> str:
        return (
            f"Corpus(name={self.name!r}, documents={len(self.documents)}, "
            f"chars={self.n_chars}, fingerprint={self.fingerprint})"
        )


def load_corpus(spec: str = "builtin", max_chars: int | None = None) -> Corpus:
    """Load a corpus from ``spec`` (see the module docstring), keeping at most ``max_chars``.

    Documents are added in order until the cap is reached; the last one is truncated.
    """
    if max_chars is not None and (isinstance(max_chars, bool) or max_chars < 1):
        raise ConfigError(f"max_chars must be a positive integer or None, got {max_chars!r}")
    spec = str(spec).strip()
    if spec == "builtin" or spec.startswith("builtin:"):
        if spec not in BUILTIN_SPECS:
            raise ConfigError(f"unknown builtin corpus {spec!r}; choose from {BUILTIN_SPECS}")
        docs = _cap(_builtin_documents(spec.partition(":")[2] or "all"), max_chars)
    elif spec.startswith("hf:"):
        docs = _load_hf(spec, max_chars)
    else:
        docs = _cap(_local_documents(spec, max_chars), max_chars)
    if not docs:
        raise LoadError(f"corpus {spec!r} is empty (no non-empty documents)")
    return Corpus(name=spec, documents=tuple(docs))


def is_local_spec(spec: str) -> bool:
    """True for a local file or folder spec (not ``builtin...`` nor ``hf:...``)."""
    spec = str(spec).strip()
    return not (spec == "builtin" or spec.startswith(("builtin:", "hf:")))


def canonical_spec(spec: str) -> str:
    """The spec a run records: a local path made absolute (``~`` expanded, links kept), so the
    run reads the same corpus from any working directory; other specs unchanged."""
    spec = str(spec).strip()
    return os.path.abspath(os.path.expanduser(spec)) if is_local_spec(spec) else spec


def _cap(docs: Iterable[str], max_chars: int | None) -> list[str]:
    """Take non-empty documents until ``max_chars`` characters; truncate the last one."""
    out: list[str] = []
    total = 0
    for doc in docs:
        if not doc.strip():
            continue
        if max_chars is not None and total + len(doc) >= max_chars:
            last = doc[: max_chars - total]
            if last.strip():
                out.append(last)
            break
        out.append(doc)
        total += len(doc)
    return out


# -- builtin ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _stdlib_files() -> tuple[Path, ...]:
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise LoadError(f"builtin corpus: Python standard library folder not found at {root}")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d
            for d in dirnames
            if d not in _SKIP_DIRS and d != "__pycache__" and not d.startswith(".")
        ]
        for fn in filenames:
            # _sysconfigdata_* is a generated, machine-specific dict, not source code.
            if fn.endswith(".py") and not fn.startswith("_sysconfigdata"):
                path = Path(dirpath) / fn
                found.append((path.relative_to(root).as_posix(), path))
    found.sort()
    return tuple(p for _, p in found)


def _read_source(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: ``ast.parse`` allocates millions of acyclic nodes (2x faster)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _definitions(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Class/function definitions in source order, at any depth (statements only)."""
    for node in body:
        if isinstance(node, _DEFS):
            yield node
        for field in ("body", "orelse", "handlers", "finalbody", "cases"):
            sub = getattr(node, field, None)
            if isinstance(sub, list):
                yield from _definitions(sub)


@functools.cache
def _module_prose(path: Path) -> str:
    """The module's docstrings (>= MIN_DOCSTRING_CHARS), in source order, joined by blank lines."""
    source = _read_source(path)
    if source is None:
        return ""
    with _gc_paused():
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            return ""
        nodes = [tree, *_definitions(tree.body)]
        docs = [ast.get_docstring(n, clean=True) for n in nodes]  # type: ignore[arg-type]
    return "\n\n".join(d for d in docs if d and len(d) >= MIN_DOCSTRING_CHARS)


def _builtin_documents(kind: str) -> Iterator[str]:
    for path in _stdlib_files():
        if kind in ("code", "all"):
            source = _read_source(path)
            if source is None:
                continue
            yield source
        if kind in ("prose", "all"):
            yield _module_prose(path)


# -- local files ----------------------------------------------------------------------------------


def _local_documents(spec: str, max_chars: int | None = None) -> Iterator[str]:
    """Yield file contents lazily; errors are raised on the first ``next()``.

    Each file is read only as far as the cap still needs (``max_chars`` minus the characters of
    the non-blank documents yielded so far, the count :func:`_cap` keeps), so a 3 GB file costs
    a cap's worth of memory."""
    path = Path(spec).expanduser()
    if path.is_dir():
        yield from _folder_documents(path, max_chars)
        return
    if not path.exists():
        raise LoadError(f"corpus {spec!r} not found ({_SPEC_HELP})")
    text = _read_text_file(path, max_chars)
    if text is _NOT_REGULAR:
        raise LoadError(
            f"corpus {path} is not a regular file (a FIFO, device or socket, or a link to one)"
        )
    if text is None:
        raise LoadError(f"corpus file {path} is not a UTF-8 text file (binary or undecodable)")
    yield text


def _folder_documents(path: Path, max_chars: int | None) -> Iterator[str]:
    files = _text_files(path)
    if not files:
        raise LoadError(
            f"corpus folder {path} has no text files ({' '.join(sorted(TEXT_SUFFIXES))})"
        )
    skipped: list[str] = []
    yielded = False
    total = 0
    for f in files:
        need = None if max_chars is None else max(1, max_chars - total)
        text = _read_text_file(f, need)
        if not isinstance(text, str):
            skipped.append(f.relative_to(path).as_posix())
            continue
        if text.strip():
            yielded = True
            total += len(text)
            yield text
    if not yielded and skipped:
        names = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        raise LoadError(
            f"corpus folder {path} has no readable text: skipped {len(skipped)} binary, "
            f"non-UTF-8 or non-regular file(s) ({names})"
        )


def _text_files(root: Path) -> list[Path]:
    """Files with a text suffix below ``root`` (hidden names skipped; links to folders are not
    followed).  Whether each is a regular file is decided when it is opened."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
        for fn in filenames:
            p = Path(dirpath) / fn
            if not fn.startswith(".") and p.suffix.lower() in TEXT_SUFFIXES:
                found.append((p.relative_to(root).as_posix(), p))
    found.sort()
    return [p for _, p in found]


_NOT_REGULAR = object()  # what _read_text_file returns for a FIFO, device or socket
_CHUNK_BYTES = 2**20


def _read_text_file(path: Path, max_chars: int | None = None) -> str | None | object:
    """UTF-8 text (BOM stripped) of at most ``max_chars`` characters; None for an unreadable,
    binary (a NUL byte) or non-UTF-8 file, judged on the part read; :data:`_NOT_REGULAR` for
    anything but a regular file or a link to one (a FIFO would block, ``/dev/zero`` never ends).

    Opened non-blocking and checked on the open descriptor (no race with a swapped path), then
    read in chunks of at most the characters still needed (a character is at least one byte),
    so memory stays bounded by the cap whatever the file's size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return _NOT_REGULAR
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        parts: list[str] = []
        have = 0
        while max_chars is None or have < max_chars:
            ask = _CHUNK_BYTES if max_chars is None else min(_CHUNK_BYTES, max_chars - have)
            data = os.read(fd, ask)
            if b"\x00" in data:
                return None
            text = decoder.decode(data, final=not data)
            parts.append(text)
            have += len(text)
            if not data:
                break
        return "".join(parts)
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


# -- Hugging Face hub -----------------------------------------------------------------------------


def _env_offline() -> bool:
    values = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(v.strip().upper() in {"1", "ON", "YES", "TRUE"} for v in values)


@contextlib.contextmanager
def _hub_offline(enabled: bool) -> Iterator[None]:
    """Force offline mode in ``datasets``/``huggingface_hub``, which read the env at import."""
    if not enabled:
        yield
        return
    import datasets.config
    import huggingface_hub.constants

    saved = (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = True
    huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def parse_hf_spec(spec: str) -> tuple[str, str | None, str]:
    """``"hf:NAME[:CONFIG][@SPLIT]"`` -> ``(name, config, split)``; split defaults to train."""
    body = spec[3:] if spec.startswith("hf:") else spec
    body, at, split = body.partition("@")
    name, _, config = body.partition(":")
    if not name.strip() or (at and not split.strip()):
        raise ConfigError(f"bad hub corpus spec {spec!r}: expected 'hf:NAME[:CONFIG][@SPLIT]'")
    return name.strip(), (config.strip() or None), (split.strip() or "train")


def _text_column(ds: Any) -> tuple[str, Iterable[Any]]:
    """Pick the text column; returns it and the rows iterable (with a peeked row put back)."""
    features = getattr(ds, "features", None)
    if features:
        strings = [
            k
            for k, v in features.items()
            if getattr(v, "dtype", None) in ("string", "large_string")
        ]
        rows: Iterable[Any] = ds
    else:  # streaming datasets may not know their features until a row is read
        it = iter(ds)
        first = next(it, None)
        if first is None:
            raise LoadError("dataset has no rows")
        strings = [k for k, v in first.items() if isinstance(v, str)]
        rows = itertools.chain([first], it)
    if not strings:
        raise LoadError("dataset has no string column")
    return ("text" if "text" in strings else strings[0]), rows


def _load_hf(spec: str, max_chars: int | None) -> list[str]:
    name, config, split = parse_hf_spec(spec)
    offline = _env_offline()
    streaming = max_chars is not None and not offline  # don't download a whole dataset for a cap
    tried = (
        f"datasets.load_dataset({name!r}, {config!r}, split={split!r}"
        f"{', streaming=True' if streaming else ''})"
        f"{' with HF_HUB_OFFLINE=1 (local cache only)' if offline else ''}"
    )
    try:
        import datasets

        with _hub_offline(offline):
            ds = datasets.load_dataset(name, config, split=split, streaming=streaming)
            column, rows = _text_column(ds)
            return _cap((row[column] or "" for row in rows), max_chars)
    except InterpError as e:
        raise LoadError(f"could not load corpus {spec!r}: {e}") from e
    except Exception as e:  # datasets raises many types (ConnectionError, ValueError, ...)
        lines = str(e).strip().splitlines()
        msg = f"{type(e).__name__}: {lines[0][:300]}" if lines else type(e).__name__
        raise LoadError(f"could not load corpus {spec!r}: tried {tried}: {msg}") from e
