"""Offline corpora with exact labels: the Python standard library's source code and docstrings.

Every Python installation ships a few megabytes of carefully written code and English prose.
That gives the course a real text corpus without the internet, and because it is Python
source, the language's own ``tokenize`` module gives *exact* labels for every character:

* :func:`token_categories` — keyword, name, operator, number, string, comment
  (a part-of-speech analogue for code);
* :func:`bracket_depths` — how many ``( [ {`` enclose each character (syntax structure).

The language model reads the same text with its own tokenizer. :func:`align_char_labels`
carries character labels over to model tokens through the tokenizer's character offsets,
and :func:`labelled_code_corpus` does the whole pipeline for a set of files.

Documents are chosen and split deterministically: a file's place in the order and its
train/test side depend only on its path and a seed (:func:`split_documents`), so adding a
file never reshuffles the others. The exact files differ between Python versions, so numbers
measured on Colab (another Python) differ slightly from numbers measured here.

Activations for many documents: :func:`collect_resid`.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import io
import keyword
import sysconfig
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

CATEGORIES = ("keyword", "name", "operator", "number", "string", "comment")
"""Token-category labels (index = label id). -1 marks characters that belong to no category."""

OPEN, CLOSE = "([{", ")]}"
# Parts of the standard library that are tests, generated tables, vendored wheels or IDE code.
_EXCLUDE_PARTS = {"test", "tests", "idle_test", "idlelib", "encodings", "pydoc_data", "ensurepip", "site-packages",
                  "dist-packages", "__pycache__", "__phello__", "turtledemo", "lib2to3", "tkinter"}


@dataclass
class Document:
    """One text: ``name`` is its stable identifier (a path relative to the standard library)."""
    name: str
    text: str


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stable_key(name: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()


def _iter_sources(seed: int = 0, min_chars: int = 2_000, max_chars: int = 300_000):
    root = stdlib_dir()
    names = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if _EXCLUDE_PARTS.intersection(rel.parts) or rel.name.startswith("test_"):
            continue
        names.append(rel.as_posix())
    names.sort(key=lambda name: _stable_key(name, seed))
    for name in names:
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not (min_chars <= len(text) <= max_chars) or "\t" in text:
            continue
        try:
            list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError):
            continue
        yield Document(name, text)


def stdlib_sources(n: int | None = None, seed: int = 0, min_chars: int = 2_000,
                   max_chars: int = 300_000) -> list[Document]:
    """Standard-library ``.py`` files (no tests, no generated tables), in a stable pseudo-random order.

    ``n`` caps the number of files. The order comes from a hash of (seed, relative path), so
    it is the same on every machine with the same Python and does not depend on ``n``.
    Files that do not tokenize cleanly, contain tabs, or are outside ``[min_chars, max_chars]``
    are skipped.
    """
    docs = []
    for doc in _iter_sources(seed, min_chars, max_chars):
        if n is not None and len(docs) >= n:
            break
        docs.append(doc)
    return docs


def stdlib_docstrings(n: int | None = None, seed: int = 0, min_chars: int = 200,
                      max_files: int | None = None) -> list[Document]:
    """English prose: module, class and function docstrings of the standard library.

    Each docstring is cleaned with :func:`inspect.cleandoc` and named
    ``"<file>:<qualified name>"``; files are visited in :func:`stdlib_sources` order.
    """
    out = []
    for number, doc in enumerate(_iter_sources(seed)):
        if max_files is not None and number >= max_files:
            break
        try:
            tree = ast.parse(doc.text)
        except SyntaxError:
            continue
        stack = [(tree, "")]
        while stack:
            node, prefix = stack.pop(0)
            text = ast.get_docstring(node, clean=False) if isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) else None
            if text and len(text) >= min_chars:
                out.append(Document(f"{doc.name}:{prefix or '<module>'}", inspect.cleandoc(text)))
                if n is not None and len(out) >= n:
                    return out
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    stack.append((child, f"{prefix}.{child.name}" if prefix else child.name))
    return out


def split_documents(docs: list, test_fraction: float = 0.3, seed: int = 0) -> tuple[list, list]:
    """Split by document (never by token), deterministically from each document's name.

    A document goes to the test side when the hash of (seed, name) falls below
    ``test_fraction``; the split of one document never depends on which others are present.
    """
    def side(doc):
        return int(_stable_key(f"split:{doc.name}", seed)[:8], 16) / 16**8 < test_fraction
    test = [d for d in docs if side(d)]
    train = [d for d in docs if not side(d)]
    return train, test


def _char_offsets(text: str) -> list[int]:
    """Offset of the start of each line (1-based line numbers index into it)."""
    starts, total = [0, 0], 0
    for line in text.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def _python_tokens(text: str):
    line_start = _char_offsets(text)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        start = line_start[tok.start[0]] + tok.start[1]
        end = line_start[tok.end[0]] + tok.end[1]
        yield tok, start, end


def _category(tok: tokenize.TokenInfo) -> int:
    kind = tok.type
    if kind == tokenize.NAME:
        return CATEGORIES.index("keyword" if keyword.iskeyword(tok.string) else "name")
    if kind == tokenize.OP:
        return CATEGORIES.index("operator")
    if kind == tokenize.NUMBER:
        return CATEGORIES.index("number")
    if kind == tokenize.STRING or tokenize.tok_name.get(kind, "").startswith("FSTRING"):
        return CATEGORIES.index("string")
    if kind == tokenize.COMMENT:
        return CATEGORIES.index("comment")
    return -1  # NEWLINE, NL, INDENT, DEDENT, ENDMARKER: whitespace


def python_char_labels(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Both character labellings of Python source in one tokenize pass: ``(categories, depths)``."""
    categories = np.full(len(text), -1, dtype=np.int64)
    events = np.zeros(len(text) + 1, dtype=np.int64)  # +1 after an opening bracket, -1 at a closing one
    for tok, start, end in _python_tokens(text):
        categories[start:end] = _category(tok)
        if tok.type == tokenize.OP and tok.string in OPEN:
            events[end] += 1
        elif tok.type == tokenize.OP and tok.string in CLOSE:
            events[start] -= 1
    return categories, np.maximum(np.cumsum(events)[: len(text)], 0)


def token_categories(text: str) -> np.ndarray:
    """Category id (index into :data:`CATEGORIES`) for every character of Python source ``text``.

    Whitespace between tokens is -1. Whitespace *inside* a string or comment belongs to it.
    Returns ``int64 [len(text)]``.
    """
    return python_char_labels(text)[0]


def bracket_depths(text: str) -> np.ndarray:
    """How many brackets enclose each character of Python source ``text``: ``int64 [len(text)]``.

    Only real bracket tokens count (not brackets inside strings or comments). A bracket
    belongs to the level outside it: in ``f(x)`` the depths are ``f:0 (:0 x:1 ):0``.
    """
    return python_char_labels(text)[1]


def align_char_labels(offsets, char_labels: np.ndarray, text: str, uniform: bool = True) -> np.ndarray:
    """Carry character labels over to model tokens: ``int64 [n_tokens]``.

    ``offsets[i] = (start, end)`` is token i's character span in ``text``. A token takes the
    label of its first non-whitespace character; tokens made only of whitespace get -1. With
    ``uniform=True`` a token whose non-whitespace characters carry different labels (such as
    ``(self`` = operator + name) also gets -1, so every kept label is exact.
    """
    out = np.full(len(offsets), -1, dtype=np.int64)
    for i, (start, end) in enumerate(offsets):
        chars = [j for j in range(start, end) if not text[j].isspace()]
        if not chars:
            continue
        values = char_labels[chars]
        if uniform and (values != values[0]).any():
            continue
        out[i] = values[0]
    return out


def tokenize_with_offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Model token ids and their character spans (a fast Hugging Face tokenizer; no BOS)."""
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    return list(enc["input_ids"]), [tuple(span) for span in enc["offset_mapping"]]


def _window_start(text: str) -> int:
    """Character offset of the first top-level ``def``/``class`` line (skips licence headers and imports)."""
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.startswith(("def ", "class ", "async def ")):
            return offset
        offset += len(line)
    return 0


@dataclass
class LabelledCorpus:
    """Model-token sequences with aligned labels, one entry per document.

    ``tokens[d]`` is a LongTensor ``[1 + n]`` starting with BOS; ``labels[task][d]`` is an
    int64 array ``[n]`` for the n real tokens (BOS excluded), -1 where a token has no label.
    """
    names: list[str]
    texts: list[str]
    tokens: list[torch.Tensor]
    labels: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def flat(self, task: str) -> np.ndarray:
        """All labels of ``task`` concatenated in document order, BOS excluded: ``[N]``."""
        return np.concatenate(self.labels[task])

    def flat_types(self) -> np.ndarray:
        """Token ids in the same order as :meth:`flat` (BOS excluded): ``[N]``."""
        return np.concatenate([t[1:].numpy() for t in self.tokens])


def start_token_id(tokenizer) -> int:
    """The token every sequence starts with (the position-0 policy): the tokenizer's BOS, or for
    families without one (Qwen) its end-of-text token, which separates documents in training."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError(f"{type(tokenizer).__name__} has neither a BOS nor an EOS token to start sequences with")
    return int(start)


def labelled_code_corpus(tokenizer, docs: list[Document], tokens_per_doc: int = 128, bos_id: int | None = None,
                         max_depth: int = 3) -> LabelledCorpus:
    """One window of ``tokens_per_doc`` model tokens per source file, with exact labels.

    The window starts at the file's first top-level ``def``/``class``. Labels (tasks):
    ``"category"`` (index into :data:`CATEGORIES`, uniform tokens only) and ``"depth"``
    (bracket depth at the token's first non-space character, clipped to ``max_depth``).
    Labels are computed on the *whole* file, so strings that began before the window are right.
    """
    bos_id = start_token_id(tokenizer) if bos_id is None else bos_id
    corpus = LabelledCorpus([], [], [], {"category": [], "depth": []})
    for doc in docs:
        start = _window_start(doc.text)
        window = doc.text[start: start + 12 * tokens_per_doc]
        ids, offsets = tokenize_with_offsets(tokenizer, window)
        if len(ids) <= tokens_per_doc:            # too short: skip rather than pad
            continue
        ids, offsets = ids[:tokens_per_doc], offsets[:tokens_per_doc]
        offsets = [(a + start, b + start) for a, b in offsets]
        char_category, char_depth = python_char_labels(doc.text)
        category = align_char_labels(offsets, char_category, doc.text)
        depth = align_char_labels(offsets, np.minimum(char_depth, max_depth), doc.text, uniform=False)
        corpus.names.append(doc.name)
        corpus.texts.append(doc.text[start: offsets[-1][1]])
        corpus.tokens.append(torch.tensor([bos_id, *ids], dtype=torch.long))
        corpus.labels["category"].append(category)
        corpus.labels["depth"].append(depth)
    return corpus


def collect_resid(model, token_seqs: list[torch.Tensor], layers: list[int], hook: str = "hook_resid_pre",
                  batch_size: int = 8, skip_first: bool = True, progress: bool = True) -> dict[int, torch.Tensor]:
    """Residual-stream activations for many sequences: ``{layer: float32 [N, d_model]}``.

    The residual stream entering each layer in ``layers`` (``n_layers`` means the last block's
    output); an out-of-range layer raises ``IndexError``. Positions are concatenated in sequence
    order; ``skip_first`` drops position 0 (BOS, the attention sink with a huge norm). A thin
    wrapper of :func:`utils.activations.resid` (right padding, dropped again; the forward pass
    stops after the last layer needed), kept for the chapters that call it by this name.
    """
    from utils.activations import resid
    if hook != "hook_resid_pre":
        raise ValueError(f"hook={hook!r}: collect_resid reads the residual stream (hook_resid_pre) only")
    return resid(model, token_seqs, layers, at="all", skip_first=skip_first, batch_size=batch_size, progress=progress)
