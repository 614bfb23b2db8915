"""parse_file: record-typed Coupa CSV bytes -> one frame per record type (coupa-flat-files.md §2–3, product.md §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

import batchsync.bytescan as bytescan_module
from batchsync.errors import DataError
from batchsync.kinds.purchase_orders.layout import LAYOUT as PO_LAYOUT
from batchsync.kinds.purchase_orders.layout import PO_ALLOCATION, PO_HEADER, PO_LINE
from batchsync.parse import ParsedFile, parse_file

try:
    from tests.coupa_files import WIDTH, po_file, row, write
except ImportError:  # tests/ is on sys.path instead of the project root
    from coupa_files import WIDTH, po_file, row, write  # type: ignore[no-redef]

LAYOUT = PO_LAYOUT
NAME = "OrderHeader_20261124_020000Z.csv"
SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "remote" / "Outgoing" / "PurchaseOrders"
THREE_LINES = 'Armoire de sécurité "Classe 90"\nDimensions : 1195 × 615 mm\nLivraison & montage – « Atelier B »'


def parse(tmp_path: Path, data: bytes, name: str = NAME) -> ParsedFile:
    return parse_file(write(tmp_path, name, data), LAYOUT)


def physical_lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def two_pos(*, crlf: bool = False) -> bytes:
    """Header 4301 (line 1), its lines (2, 3), header 4302 (4), its line (5)."""
    return po_file(
        [{"id": "4301"}, {"id": "4302", "supplier-id": "502"}],
        [{"description": "first"}, {"description": "second"}, {"order-header-id": "4302", "description": "third"}],
        crlf=crlf,
    )


# --- reading the columns ---------------------------------------------------------------------------------------


def test_default_columns_without_column_name_rows(tmp_path: Path) -> None:
    data = po_file(
        [{"id": "4301", "supplier-id": "501", "accounting-total": "25.00"}],
        [{"description": "Kabelbinder", "price": "12.50", "quantity": "2"}],
        [{"order-line-num": "1", "account-allocation-percent": "100", "account-code": "6120-510"}],
    )
    parsed = parse(tmp_path, data)

    assert {role: f.height for role, f in parsed.frames.items()} == {"header": 1, "line": 1, "allocation": 1}
    assert set(parsed.frames["header"].columns) == {"_line", *PO_HEADER}
    assert set(parsed.frames["line"].columns) == {"_line", *PO_LINE}
    assert set(parsed.frames["allocation"].columns) == {"_line", *PO_ALLOCATION}
    header = parsed.frames["header"].row(0, named=True)
    assert (header["_line"], header["type"], header["id"], header["version"], header["status"]) == (
        1,
        "Header",
        "4301",
        "1",
        "issued",
    )
    assert (header["supplier-id"], header["supplier-number"], header["accounting-total"]) == (
        "501",
        "SUP-1001",
        "25.00",
    )
    assert header["created-at"] == "2026-11-23T09:30:00+01:00"
    assert header["payment-terms-code"] == "Net 30"
    assert header["acknowledged-at"] is None  # "" is read as null
    line = parsed.frames["line"].row(0, named=True)
    assert (line["_line"], line["order-header-id"], line["line-number"]) == (2, "4301", "1")
    assert (line["description"], line["price"], line["quantity"], line["total"], line["uom"]) == (
        "Kabelbinder",
        "12.50",
        "2",
        "25.00",
        "EA",
    )
    allocation = parsed.frames["allocation"].row(0, named=True)
    assert (allocation["_line"], allocation["order-header-id"], allocation["account-code"]) == (3, "4301", "6120-510")
    assert parsed.unknown.height == 0
    assert parsed.warnings == []
    assert not parsed.is_empty


def test_column_name_rows_win_over_the_default_order(tmp_path: Path) -> None:
    first = ["type", "id", "supplier-number", "status", "version", "supplier-name", "supplier-id"]
    header_columns = first + [c for c in PO_HEADER if c not in first]
    at = PO_LINE.index("total") + 1
    line_columns = [*PO_LINE[:at], "tax-code", *PO_LINE[at:]]
    data = po_file(
        [{"id": "4205", "supplier-id": "523", "supplier-number": "SUP-1005", "version": "2"}],
        [{"price": "87.425000", "quantity": "4", "total": "349.70", "tax-code": "DE-VAT19"}],
        names_rows=True,
        crlf=True,
        columns={"header": header_columns, "line": line_columns},
    )
    assert len(physical_lines(data)[0].split(b",")) == 78  # the Line record is one wider than the default

    parsed = parse(tmp_path, data)

    header = parsed.frames["header"]
    line = parsed.frames["line"]
    assert header.height == 1 and line.height == 1  # column-name rows are not records
    h = header.row(0, named=True)
    assert (h["_line"], h["id"], h["supplier-number"], h["status"], h["version"], h["supplier-id"]) == (
        4,
        "4205",
        "SUP-1005",
        "issued",
        "2",
        "523",
    )
    ln = line.row(0, named=True)
    # price/quantity/total read by name, not shifted by the extra column
    assert (ln["_line"], ln["price"], ln["quantity"], ln["total"], ln["currency"], ln["uom"]) == (
        5,
        "87.425000",
        "4",
        "349.70",
        "EUR",
        "EA",
    )
    assert ln["tax-code"] == "DE-VAT19"  # kept; later stages ignore it
    assert set(PO_LINE) <= set(line.columns)


def test_missing_optional_column_in_a_column_name_row_becomes_an_empty_column(tmp_path: Path) -> None:
    header_columns = [c for c in PO_HEADER if c != "payment-terms-code"]
    data = po_file([{"id": "4301"}], [{}], names_rows=True, columns={"header": header_columns})

    header = parse(tmp_path, data).frames["header"]

    assert "payment-terms-code" in header.columns
    assert header["payment-terms-code"].to_list() == [None]
    assert header["id"].to_list() == ["4301"]


@pytest.mark.parametrize("crlf", [False, True], ids=["LF", "CRLF"])
def test_line_endings(tmp_path: Path, crlf: bool) -> None:
    data = two_pos(crlf=crlf)
    assert (b"\r\n" in data) == crlf

    parsed = parse(tmp_path, data)

    assert parsed.frames["header"].select("_line", "id").rows() == [(1, "4301"), (4, "4302")]
    assert parsed.frames["line"].select("_line", "order-header-id", "description").rows() == [
        (2, "4301", "first"),
        (3, "4301", "second"),
        (5, "4302", "third"),
    ]
    # the last column of every row must not keep a stray \r
    last = PO_LINE[-1]
    assert parsed.frames["line"][last].to_list() == [None, None, None]
    assert parsed.frames["header"]["supplier-id"].to_list() == ["501", "502"]


@pytest.mark.parametrize("crlf", [False, True], ids=["LF", "CRLF"])
def test_embedded_quotes_and_line_breaks_keep_physical_line_numbers(tmp_path: Path, crlf: bool) -> None:
    data = po_file(
        [{"id": "4203"}, {"id": "4204"}],
        [
            {"description": THREE_LINES},
            {"description": 'Monitor 27" 4K, "height" adjustable'},
            {"order-header-id": "4204"},
        ],
        [{"order-header-id": "4203", "order-line-num": "2"}],
        crlf=crlf,
    )

    parsed = parse(tmp_path, data)

    lines = parsed.frames["line"]
    assert lines.select("_line", "order-header-id", "line-number").rows() == [
        (2, "4203", "1"),  # spans physical lines 2-4
        (5, "4203", "2"),
        (8, "4204", "1"),
    ]
    assert lines["description"].to_list()[:2] == [THREE_LINES, 'Monitor 27" 4K, "height" adjustable']
    assert parsed.frames["allocation"].select("_line", "order-line-num").rows() == [(6, "2")]
    assert parsed.frames["header"].select("_line", "id").rows() == [(1, "4203"), (7, "4204")]


def test_blank_line_does_not_shift_line_numbers(tmp_path: Path) -> None:
    lines = physical_lines(po_file([{"id": "4203"}], [{"description": THREE_LINES}, {}]))
    data = b"\n".join([lines[0], b"", *lines[1:]])  # line 2 is empty

    parsed = parse(tmp_path, data)

    assert parsed.frames["line"]["_line"].to_list() == [3, 6]


def test_blank_first_line_is_tolerated_like_other_blank_lines(tmp_path: Path) -> None:
    data = b"\n" + po_file([{"id": "4301"}], [{}, {}])

    parsed = parse(tmp_path, data)

    assert parsed.frames["header"]["_line"].to_list() == [2]
    assert parsed.frames["line"]["_line"].to_list() == [3, 4]


# --- encoding --------------------------------------------------------------------------------------------------


def test_bom_is_stripped_with_a_warning_naming_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    plain = parse(tmp_path, two_pos(), "plain.csv")
    with caplog.at_level("WARNING", logger="batchsync.parse"):
        bom = parse(tmp_path, b"\xef\xbb\xbf" + two_pos(), "with_bom.csv")

    assert len(bom.warnings) == 1
    assert "with_bom.csv" in bom.warnings[0] and "byte order mark" in bom.warnings[0]
    assert any("with_bom.csv" in r.getMessage() for r in caplog.records)
    assert plain.warnings == []
    for role in ("header", "line", "allocation"):
        assert bom.frames[role].equals(plain.frames[role]), role
    assert bom.frames["header"]["type"].to_list() == ["Header", "Header"]  # not "\ufeffHeader"
    assert bom.unknown.height == 0


def test_nul_byte_is_rejected_with_offset_and_line(tmp_path: Path) -> None:
    data = two_pos()
    bad = data.replace(b'"second"', b'"sec\x00ond"')
    offset = data.index(b'"second"') + 4

    with pytest.raises(DataError) as caught:
        parse(tmp_path, bad)

    err = caught.value
    assert (err.offset, err.line, err.file) == (offset, 3, NAME)
    assert f"byte offset {offset}" in err.message and "NUL" in err.message


def test_invalid_utf8_is_rejected_with_offset_and_physical_line(tmp_path: Path) -> None:
    data = po_file([{"id": "4203"}], [{"description": THREE_LINES}, {"description": "Société"}])
    bad = data.replace("Société".encode(), "Société".encode("latin-1"))  # é as the single byte 0xe9
    offset = bad.index(b"\xe9")

    with pytest.raises(DataError) as caught:
        parse(tmp_path, bad)

    err = caught.value
    assert (err.offset, err.line) == (offset, 5)  # header 1, a record over lines 2-4, then line 5
    assert "0xe9" in err.message and f"line 5, byte offset {offset}" in err.message


def test_file_ending_inside_a_utf8_character(tmp_path: Path) -> None:
    data = two_pos() + "é".encode()[:1]

    with pytest.raises(DataError) as caught:
        parse(tmp_path, data)

    assert caught.value.offset == len(data) - 1
    assert caught.value.line == 6


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_encoding_checks_across_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Multi-byte characters split over chunks are fine; a bad byte keeps its true offset and line."""
    monkeypatch.setattr(bytescan_module, "_CHUNK", chunk)
    good = po_file([{"id": "4203", "supplier-name": "Société Générale €"}], [{"description": THREE_LINES}])

    assert parse(tmp_path, good).frames["line"]["description"].to_list() == [THREE_LINES]

    truncated = good.replace("× 615".encode(), b"\xc3 615")  # a 2-byte lead without its continuation
    with pytest.raises(DataError) as caught:
        parse(tmp_path, truncated)
    assert (caught.value.offset, caught.value.line) == (good.index("× 615".encode()), 3)


# --- broken shapes ---------------------------------------------------------------------------------------------


def test_unbalanced_quote_is_rejected_with_its_line(tmp_path: Path) -> None:
    data = two_pos().replace(b'"second"', b'"sec"ond"')

    with pytest.raises(DataError) as caught:
        parse(tmp_path, data)

    assert caught.value.line == 3
    assert "line 3" in caught.value.message and "quot" in caught.value.message


def test_unclosed_quote_is_rejected_with_a_line_number(tmp_path: Path) -> None:
    data = two_pos().replace(b'"second"', b'"second')

    with pytest.raises(DataError) as caught:
        parse(tmp_path, data)

    assert caught.value.line == 3


def test_row_with_more_fields_is_rejected_with_its_line(tmp_path: Path) -> None:
    lines = physical_lines(two_pos())
    lines[2] += b',""'

    with pytest.raises(DataError) as caught:
        parse(tmp_path, b"\n".join(lines))

    assert caught.value.line == 3
    assert f"{WIDTH + 1} fields" in caught.value.message


def test_row_with_fewer_fields_is_rejected_with_its_line(tmp_path: Path) -> None:
    lines = physical_lines(two_pos())
    lines[3] = lines[3].rsplit(b",", 1)[0]

    with pytest.raises(DataError) as caught:
        parse(tmp_path, b"\n".join(lines))

    assert caught.value.line == 4
    assert "line 4" in caught.value.message and "fewer fields" in caught.value.message


@pytest.mark.parametrize(
    ("role", "column", "word"),
    [
        ("header", "supplier-id", "Header"),
        ("line", "price", "Line"),
        ("allocation", "account-allocation-percent", "Allocation"),
    ],
)
def test_missing_required_column_names_the_column(tmp_path: Path, role: str, column: str, word: str) -> None:
    default = {"header": PO_HEADER, "line": PO_LINE, "allocation": PO_ALLOCATION}[role]
    data = po_file([{"id": "4301"}], [{}], [{}], names_rows=True, columns={role: [c for c in default if c != column]})

    with pytest.raises(DataError) as caught:
        parse(tmp_path, data)

    assert caught.value.column == column
    assert repr(column) in caught.value.message and word in caught.value.message
    assert caught.value.file == NAME


def test_unknown_record_types_are_kept_aside_with_their_line(tmp_path: Path) -> None:
    lines = physical_lines(two_pos())
    comment = row(["Comment", "exported by job 17"]).rstrip(b"\n")
    data = b"\n".join([*lines[:2], comment, *lines[2:]])

    parsed = parse(tmp_path, data)

    assert parsed.unknown.rows() == [(3, "Comment")]
    assert parsed.frames["header"].select("_line", "id").rows() == [(1, "4301"), (5, "4302")]
    assert parsed.frames["line"]["_line"].to_list() == [2, 4, 6]


# --- nothing in it ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "warned"),
    [(b"", False), (b"\xef\xbb\xbf", True)],
    ids=["zero-bytes", "bom-only"],
)
def test_empty_file_is_an_empty_parsed_file(tmp_path: Path, data: bytes, warned: bool) -> None:
    parsed = parse(tmp_path, data)

    assert parsed.is_empty
    assert {role: f.height for role, f in parsed.frames.items()} == {"header": 0, "line": 0, "allocation": 0}
    assert set(parsed.frames["line"].columns) == {"_line", *PO_LINE}
    assert parsed.unknown.height == 0
    assert bool(parsed.warnings) == warned


def test_column_name_rows_only_is_an_empty_parsed_file(tmp_path: Path) -> None:
    parsed = parse(tmp_path, po_file([], [], names_rows=True))

    assert parsed.is_empty
    assert parsed.unknown.height == 0


# --- the shipped samples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("OrderHeader_20261123_020000Z.csv", {"header": 4, "line": 9, "allocation": 2}),
        ("OrderHeader_20261123_030000Z.csv", {"header": 3, "line": 8, "allocation": 2}),
        ("OrderHeader_20261123_040000Z.csv", {"header": 3, "line": 5, "allocation": 0}),
    ],
)
def test_samples_parse_with_expected_record_counts(name: str, counts: dict[str, int]) -> None:
    parsed = parse_file(SAMPLES / name, LAYOUT)

    assert {role: f.height for role, f in parsed.frames.items()} == counts
    assert parsed.unknown.height == 0
    assert parsed.warnings == []


def test_sample_a_multi_line_description_and_line_numbers() -> None:
    lines = parse_file(SAMPLES / "OrderHeader_20261123_020000Z.csv", LAYOUT).frames["line"]

    po_4203 = lines.filter(lines["order-header-id"] == "4203")
    assert po_4203.select("_line", "line-number").rows() == [(11, "1"), (14, "2")]
    description = po_4203["description"][0]
    assert description.count("\n") == 2 and '"Classe 90"' in description and "« Atelier B »" in description


def test_sample_b_reordered_header_and_extra_line_column() -> None:
    parsed = parse_file(SAMPLES / "OrderHeader_20261123_030000Z.csv", LAYOUT)

    headers = parsed.frames["header"]
    assert headers.select("id", "version", "supplier-id", "supplier-number").rows() == [
        ("4202", "2", "402", "SUP-1003"),
        ("4205", "1", "523", "SUP-1005"),
        ("4206", "1", "531", "SUP-1006"),
    ]
    lines = parsed.frames["line"]
    assert "tax-code" in lines.columns
    bad = lines.filter((lines["order-header-id"] == "4206") & (lines["line-number"] == "1"))
    assert bad.select("_line", "price").rows() == [(16, "12,50")]
    assert lines.filter(lines["order-header-id"] == "4205")["price"].to_list()[0] == "87.425000"


def test_record_type_words_match_whatever_their_case_and_spaces(tmp_path: Path) -> None:
    """A Line row whose type word lost its case or gained a space is still the PO's line, not an unknown row."""
    data = po_file([{"id": "4301"}], [{"line-number": "1"}, {"line-number": "2"}])
    lines = data.split(b"\n")
    lines[1] = lines[1].replace(b'"Line"', b'" line"', 1)
    lines[2] = lines[2].replace(b'"Line"', b'"LINE"', 1)
    parsed = parse_file(write(tmp_path, "po.csv", b"\n".join(lines)), LAYOUT)
    assert parsed.frames["line"]["line-number"].to_list() == ["1", "2"]
    assert parsed.unknown.height == 0
