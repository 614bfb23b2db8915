"""batchsync.handoff.publish for a target of several files, some split by decision (docs/handoff.md)."""

from __future__ import annotations

import json
from pathlib import Path

from batchsync.handoff import Body, Holds, files_by_decision, publish
from batchsync.streams import Sink

MAIN = "R0000002-0001_OrderHeader_1.0123456789ab.sap_pordcr1_xml.xml"
CHANGES = "R0000002-0001_OrderHeader_1.0123456789ab.sap_pordcr1_xml.changes.xml"
SPLIT = {MAIN: ("new",), CHANGES: ("change", "close", "cancel")}


def body(text: bytes, holds: Holds) -> Body:
    def write(stream: Sink) -> Holds:
        stream.write(text)
        return holds

    return write


def manifest() -> dict[str, object]:
    return {"documents": [{"id": "4202", "version": 2, "decision": "change"}]}


def test_a_file_holding_none_of_its_documents_is_left_out_the_main_one_too(tmp_path: Path) -> None:
    more = [(CHANGES, body(b"<PORDCH03/>", Holds.DOCUMENTS))]
    handoff = publish(tmp_path, MAIN, body(b"", Holds.NONE_OF_ITS_OWN), manifest, more, SPLIT)

    assert handoff is not None
    written = json.loads((tmp_path / f"{MAIN}.manifest.json").read_text(encoding="utf-8"))
    assert (written["file"], written["sha256"], written["bytes"]) == (None, None, 0)
    assert [(o["file"], o["decisions"]) for o in written["outputs"]] == [(CHANGES, ["change", "close", "cancel"])]
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHANGES, f"{MAIN}.manifest.json"]
    assert files_by_decision(written) == {"change": CHANGES, "close": CHANGES, "cancel": CHANGES}


def test_no_file_holding_a_document_publishes_nothing(tmp_path: Path) -> None:
    more = [(CHANGES, body(b"", Holds.NONE_OF_ITS_OWN))]
    assert publish(tmp_path, MAIN, body(b"", Holds.NONE_OF_ITS_OWN), manifest, more, SPLIT) is None
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_attempts_files_without_their_manifest_are_replaced_not_left_beside(tmp_path: Path) -> None:
    """A crash after an output was renamed into place, before the manifest: the retry (another run, another
    sequence) leaves no second copy for a folder poller to post."""
    earlier = CHANGES.replace("R0000002-0001_", "R0000001-0003_")
    (tmp_path / earlier).write_bytes(b"<PORDCH03/>")
    unrelated = "R0000001-0002_OrderHeader_2.fedcba987654.sap_pordcr1_xml.changes.xml"
    (tmp_path / unrelated).write_bytes(b"<PORDCH03/>")
    more = [(CHANGES, body(b"<PORDCH03/>", Holds.DOCUMENTS))]

    publish(tmp_path, MAIN, body(b"<PORDCR102/>", Holds.DOCUMENTS), manifest, more, SPLIT)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHANGES, MAIN, f"{MAIN}.manifest.json", unrelated])
