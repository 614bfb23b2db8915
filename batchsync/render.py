"""Render documents through the target's jinja2 template, streamed to a file.

``StrictUndefined``: a template naming a record the mapping does not build
fails when loaded (``check``), not halfway through a night's file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from batchsync.errors import ConfigError
from batchsync.faults import checkpoint
from batchsync.streams import Sink

_CHUNK_ROWS = 2000
# pieces this size come from the heap; multi-MB ones fault in fresh pages every time (~0.7 GB/s)
_WRITE_CHARS = 256 << 10


def load_template(templates_dir: Path, name: str) -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # ERP flat files, not HTML
    )
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"template {templates_dir / name} not found") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{exc.filename or name}: line {exc.lineno}: {exc.message}", hint="fix the template") from exc


_DOCUMENT_KEYS = frozenset({"id", "version", "_decision"})  # what a document is, not what it holds


class _Document(dict[str, Any]):
    """A document as the template sees it: reading one of its records counts it as written."""

    def __init__(self, values: dict[str, Any], counted: _Counted) -> None:
        super().__init__(values)
        self._counted: _Counted | None = counted
        self._renamed = counted.renamed  # an output of several reads its own records' texts as line_records

    def __getitem__(self, key: str) -> Any:
        if self._counted is not None and key not in _DOCUMENT_KEYS:
            self._counted.written += 1
            self._counted = None
        return super().__getitem__(self._renamed.get(key, key))


class _Counted:
    """The documents of every batch, one dict each, counted on the way to the template.

    They arrive as a stream (a large file is never held whole), so a template can walk them once;
    a second walk would see none, and a filter would drop some: both are errors, never a short file.
    """

    def __init__(self, batches: Iterable[pl.DataFrame], template: str, renamed: dict[str, str] | None = None) -> None:
        self.batches = batches
        self.template = template
        self.renamed = renamed or {}
        self.count = 0
        self.written = 0
        self._walked = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._walked:
            raise ConfigError(
                f"template {self.template} goes through the documents a second time, and would find none",
                hint="lay out each document in one loop over documents",
            )
        self._walked = True
        for frame in self.batches:
            for offset in range(0, frame.height, _CHUNK_ROWS):
                rows = frame.slice(offset, _CHUNK_ROWS).rows(named=True)
                self.count += len(rows)
                yield from (_Document(r, self) for r in rows)

    def check_all_written(self) -> None:
        if self.written < self.count:
            raise ConfigError(
                f"template {self.template} wrote {self.written} of the {self.count} document(s) it was "
                "given: the others would be lost",
                hint="a template writes every document it is given (no filter in its loop over documents)",
            )


def render_to(
    stream: Sink,
    template: jinja2.Template,
    batches: Iterable[pl.DataFrame],
    *,
    handoff: bool = True,
    charset: str = "utf-8",
    first_line: str | None = None,
    renamed: dict[str, str] | None = None,
    newline: str = "\n",
) -> int:
    """Write the rendered file to ``stream`` in large pieces; return how many documents it holds.

    ``batches`` are frames of documents, rendered in order as one file: a large file
    arrives batch by batch and is never held whole. ``first_line`` (a CSV target's column-name row,
    built from its mapping) comes before what the template writes. ``newline`` ends every line,
    a line break inside a quoted CSV cell included.
    """
    documents = _Counted(batches, str(template.name), renamed)
    pending: list[str] = [] if first_line is None else [_ended(first_line + "\n", newline)]
    size = 0
    try:
        for piece in template.generate(documents=documents):
            piece = _ended(piece, newline)
            pending.append(piece)
            size += len(piece)
            if size >= _WRITE_CHARS:
                _write(stream, pending, handoff, charset)
                pending, size = [], 0
        _write(stream, pending, handoff, charset)
        documents.check_all_written()
    except jinja2.UndefinedError as exc:
        raise ConfigError(
            f"template {template.name}: {exc.message}", hint="the template names a record the mapping does not build"
        ) from exc
    except UnicodeEncodeError as exc:  # the mapping rejects values it cannot encode: this is the template's text
        raise ConfigError(
            f"template {template.name}: holds {exc.object[exc.start : exc.end]!r}, which {charset} cannot write",
            hint="write the template in characters of the mapping's encoding.charset",
        ) from exc
    return documents.count


def _ended(text: str, newline: str) -> str:
    """Every line ending of ``text`` as ``newline``: a CR LF from Coupa stays one line break."""
    return text if newline == "\n" else text.replace("\r\n", "\n").replace("\n", newline)


def _write(stream: Sink, pieces: list[str], handoff: bool, charset: str) -> None:
    wrote = False
    for data in _encoded(pieces, charset):
        stream.write(data)
        wrote = wrote or bool(data)
    if handoff and wrote:
        checkpoint("mid-render")


def _encoded(pieces: list[str], charset: str = "utf-8") -> Iterator[bytes]:
    """In the mapping's code page, runs of ASCII pieces joined first (``isascii`` is O(1) on a str;
    ASCII is the same bytes in every code page offered).

    One accented supplier name would otherwise widen a whole joined piece to
    UCS-2, and encoding that ran at 0.7 GB/s instead of 2-3 GB/s.
    """
    run: list[str] = []
    for piece in pieces:
        if piece.isascii():
            run.append(piece)
            continue
        if run:
            yield "".join(run).encode("ascii")
            run = []
        yield piece.encode(charset)
    if run:
        yield "".join(run).encode("ascii")


def check_template(
    template: jinja2.Template, record_names: list[str], charset: str = "utf-8", renamed: dict[str, str] | None = None
) -> None:
    """Render one empty document so a misspelt record name, text the code page cannot hold, a second loop
    over the documents or a filter in it fails at load time (``check``), not in the night."""
    names = ["id", "version", "_decision", *record_names, *(renamed or {}).values()]
    sample = pl.DataFrame({name: [""] for name in dict.fromkeys(names)})
    render_to(_NullSink(), template, [sample], handoff=False, charset=charset, renamed=renamed)


class _NullSink:
    def write(self, data: bytes) -> int:
        return len(data)
