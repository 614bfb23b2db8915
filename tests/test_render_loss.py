"""A template cannot lose documents silently (issue 15): a second walk over the documents or a filter in
the loop is an error at load (``check``) or at render, never a shorter file with a full manifest."""

from __future__ import annotations

from pathlib import Path

import jinja2
import polars as pl
import pytest

from batchsync.errors import ConfigError
from batchsync.render import check_template, render_to
from tests.conftest import Workspace

SHIPPED = (Path(__file__).resolve().parent.parent / "templates" / "sap_orders05.txt.j2").read_text()
DOCS = pl.DataFrame(
    {"id": ["1", "2", "3"], "version": ["1"] * 3, "_decision": ["new"] * 3, "header_records": list("abc")}
)


class Collect:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def template(text: str) -> jinja2.Template:
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text)


def test_a_second_walk_over_the_documents_fails_when_the_template_is_loaded() -> None:
    twice = template("{% for d in documents %}{{ d.header_records }}{% endfor %}{% for d in documents %}x{% endfor %}")
    with pytest.raises(ConfigError) as caught:
        check_template(twice, ["header_records"])
    assert "goes through the documents a second time, and would find none" in caught.value.message


def test_a_filter_that_drops_documents_fails_at_render_and_writes_nothing_usable() -> None:
    filtered = template('{% for d in documents if d.id != "2" %}{{ d.header_records }}\n{% endfor %}')
    check_template(filtered, ["header_records"])  # the empty sample passes the filter
    with pytest.raises(ConfigError) as caught:
        render_to(Collect(), filtered, [DOCS])
    assert caught.value.message.endswith("wrote 2 of the 3 document(s) it was given: the others would be lost")


def test_a_template_that_writes_every_document_passes_even_when_it_looks_ahead() -> None:
    ahead = template("{% for d in documents %}{{ loop.index }}/{{ loop.length }} {{ d.header_records }}\n{% endfor %}")
    out = Collect()
    assert render_to(out, ahead, [DOCS]) == 3
    assert out.data == b"1/3 a\n2/3 b\n3/3 c\n"


def test_a_run_with_a_filtering_template_hands_off_nothing_and_says_why(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    templates = ws.root / "templates"
    templates.mkdir()
    (templates / "sap_ordchg.txt.j2").write_text(SHIPPED)
    (templates / "sap_orders05.txt.j2").write_text(
        SHIPPED.replace("{% for doc in documents -%}", '{% for doc in documents if doc.id != "4202" -%}')
    )
    ws.config.write_text(ws.config.read_text().replace("[local]\n", f'[local]\ntemplates_dir = "{templates}"\n', 1))
    ws.put("OrderHeader_20261123_020000Z.csv")

    result = ws.cli("run")

    assert result.exit_code == 2
    assert "wrote 3 of the 4 document(s) it was given" in result.stderr
    assert ws.handoff_files() == [] and ws.handoff_files(".json") == []
    assert ws.rows("SELECT outcome FROM po_versions") == []  # nothing recorded as sent
