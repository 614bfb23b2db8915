"""Deterministic generator of Coupa Purchase Order exports in the R35 record-typed layout.

The files look like ``samples/remote/Outgoing/PurchaseOrders``
(docs: coupa-flat-files.md §2-3): every field double-quoted, ``""`` for a quote
inside a value, line breaks inside some descriptions, rows padded with ``""``
to the widest record type (Line, 77 fields), UTF-8 without BOM, LF line ends.
Per PO: one ``Header`` row, its ``Line`` rows, then the ``Allocation`` rows of
its split-accounted lines. Every generated PO is valid for batchsync's
``purchase_orders`` feed and ``sap_orders05`` target:

- supplier numbers from ``mappings/xref/suppliers.csv`` (SUP-1001..SUP-1008),
  one currency per PO (the supplier's), line currency = header currency;
- prices with at most 4 decimals, quantities with at most 3; line total =
  ``round(float(price) * float(quantity), 2)``, computed with the validator's
  own expression, so ``|total - round(price*qty, 2)| <= 0.01`` holds exactly;
  amount-based lines (``OrderAmountLine``) have no quantity and total = price;
- header ``accounting-total`` = sum of its line totals; allocation percents
  add up to exactly 100 and allocation amounts to their line's total;
- descriptions at most 70 characters including their line breaks (SAP KTEXT);
- ``created-at``, ``updated-at``, ``need-by-date`` in ISO 8601 with an offset.

Values are drawn from small pools (suppliers, sites, people, accounts, a
catalog of items with typical prices) with a seeded ``random.Random`` per chunk
of POs, and every row's text is built by polars string expressions, so
200,000 POs x 5 lines (about 0.5 GB) take well under a minute.

Usage::

    python bench/generate.py OUT_DIR --files 1 --pos-per-file 200000 --lines-per-po 5 [--seed 7]
"""

from __future__ import annotations

import argparse
import array
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl

CHUNK_POS = 20_000  # POs generated per polars batch (part of the seed: keep constant)
FIRST_PO_ID = 500_000
FIRST_LINE_ID = 2_000_000
FIRST_ALLOCATION_ID = 9_000_000
EPOCH = datetime(2026, 11, 16, 0, 0, 0)  # created-at values fall within the following 7 days
FILE_STAMP = datetime(2026, 11, 23, 2, 0, 0)  # first file name; one minute per following file
KTEXT_MAX = 70
HEADER_WIDTH, LINE_WIDTH, ALLOCATION_WIDTH = 65, 77, 42
ROW_WIDTH = LINE_WIDTH


def q(value: str) -> str:
    """One quoted CSV field, a quote inside doubled."""
    return '"' + value.replace('"', '""') + '"'


def block(*values: str) -> str:
    """Several quoted fields joined by commas (used as one piece of a row)."""
    return ",".join(q(v) for v in values)


# --------------------------------------------------------------------------- pools


@dataclass(frozen=True)
class Site:
    currency: str
    offset: str  # as written after the time: +01:00, -06:00, Z
    city: str
    address_id: str
    name: str
    postal: str
    state: str
    street1: str
    street2: str
    country: str
    cost_center: str
    people: tuple[tuple[str, str, str, str, str, str], ...]  # email, employee no, first, id, last, login
    accounts: tuple[tuple[str, str, str], ...]  # code (4711-100-200), account name, chart name
    department: str


def _person(first: str, last: str, number: str, pid: str, domain: str = "example-corp.com") -> tuple[str, ...]:
    login = (first[0] + last).lower().replace(" ", "").replace("é", "e").replace("ü", "u").replace("ö", "o")
    email = f"{first.lower()}.{last.lower().replace(' ', '')}@{domain}"
    email = email.replace("é", "e").replace("ü", "u").replace("ö", "o").replace("ç", "c")
    return (email, number, first, pid, last, login)


SITES: list[Site] = [
    Site(
        "EUR",
        "+01:00",
        "Stuttgart",
        "21",
        "Werk Stuttgart-Feuerbach",
        "70469",
        "BW",
        "Borsigstraße 14",
        "Tor 3, Wareneingang",
        "DE",
        "Kostenstelle 4711",
        (
            _person("Julia", "Schmidt", "E10482", "1187"),
            _person("Lukas", "Wagner", "E10511", "1190"),
            _person("Anna", "Hoffmann", "E10533", "1194"),
        ),
        (
            ("4711-100-200", "Arbeitsschutz Werk Stuttgart", "DE Kontenplan"),
            ("4711-100-210", "Instandhaltung Werk Stuttgart", "DE Kontenplan"),
            ("4711-100-300", "Fertigung Linie 2", "DE Kontenplan"),
            ("4711-200-110", "Logistik Stuttgart", "DE Kontenplan"),
        ),
        "Produktion",
    ),
    Site(
        "EUR",
        "+01:00",
        "Hamburg",
        "24",
        "Lager Hamburg-Billbrook",
        "22113",
        "HH",
        "Billbrookdeich 210",
        "",
        "DE",
        "Kostenstelle 4740",
        (_person("Jonas", "Becker", "E10602", "1211"), _person("Lea", "Krüger", "E10617", "1215")),
        (
            ("4740-100-200", "Lagerbetrieb Hamburg", "DE Kontenplan"),
            ("4740-100-250", "Verpackung Hamburg", "DE Kontenplan"),
            ("4740-300-100", "Fuhrpark Hamburg", "DE Kontenplan"),
        ),
        "Logistik",
    ),
    Site(
        "EUR",
        "Z",
        "Lyon",
        "31",
        "Site de Lyon Gerland",
        "69007",
        "ARA",
        "12 rue de Gerland",
        "Bâtiment C",
        "FR",
        "Centre de coût 3100",
        (
            _person("Marie", "Dubois", "E20315", "1342"),
            _person("Hugo", "Lefèvre", "E20322", "1347"),
            _person("Camille", "Moreau", "E20340", "1351"),
        ),
        (
            ("4712-300-410", "Sécurité site Lyon", "FR Plan comptable"),
            ("4712-300-420", "Maintenance site Lyon", "FR Plan comptable"),
            ("4712-310-100", "Production Lyon", "FR Plan comptable"),
        ),
        "HSE",
    ),
    Site(
        "USD",
        "-06:00",
        "Chicago",
        "41",
        "Chicago Office",
        "60606",
        "IL",
        "225 W Wacker Dr",
        "Suite 1800",
        "US",
        "Cost center 5100",
        (
            _person("Riya", "Patel", "E30611", "1425"),
            _person("Daniel", "Kim", "E30624", "1431"),
            _person("Sarah", "Johnson", "E30640", "1436"),
        ),
        (
            ("6120-510-300", "IT Equipment Chicago", "US Chart of Accounts"),
            ("6110-510-100", "Office Supplies Chicago", "US Chart of Accounts"),
            ("6130-510-100", "Office Furniture Chicago", "US Chart of Accounts"),
            ("6120-520-300", "IT Equipment Marketing", "US Chart of Accounts"),
        ),
        "IT",
    ),
    Site(
        "USD",
        "-05:00",
        "Pittsburgh",
        "44",
        "Pittsburgh Plant",
        "15222",
        "PA",
        "1100 Smallman St",
        "",
        "US",
        "Cost center 6200",
        (_person("Kevin", "Nguyen", "E30558", "1419"), _person("Megan", "O'Brien", "E30702", "1440")),
        (
            ("6410-620-150", "Plant Maintenance Pittsburgh", "US Chart of Accounts"),
            ("6410-620-200", "Plant Operations Pittsburgh", "US Chart of Accounts"),
            ("6420-630-100", "Quality Lab Pittsburgh", "US Chart of Accounts"),
        ),
        "Maintenance",
    ),
    Site(
        "GBP",
        "+00:00",
        "Manchester",
        "51",
        "Manchester Distribution Centre",
        "M17 1SN",
        "GMN",
        "Trafford Park Rd 7",
        "Unit 4",
        "GB",
        "Cost centre 7100",
        (_person("Oliver", "Hughes", "E40105", "1502"), _person("Amelia", "Clarke", "E40118", "1507")),
        (
            ("7110-710-100", "Warehouse Manchester", "UK Chart of Accounts"),
            ("7110-710-200", "Packaging Manchester", "UK Chart of Accounts"),
        ),
        "Distribution",
    ),
]

BUYERS = {
    "EUR": [_person("Tobias", "Becker", "E10977", "1203"), _person("Claire", "Martin", "E20355", "1360")],
    "USD": [_person("Kevin", "Nguyen", "E30558", "1419"), _person("Laura", "Chen", "E30590", "1422")],
    "GBP": [_person("James", "Wilson", "E40150", "1510")],
}

# number, coupa id, name (<= 35 for SAP NAME1), currency, terms code, discount days, net days, discount rate,
# shipping terms, part-number prefix, contract (id, name) or None
SUPPLIERS = [
    ("SUP-1001", "311", "Müller Industriebedarf GmbH", "EUR", "Net 30", "", "30", "", "DAP", "MI", None),
    ("SUP-1002", "318", "Société Générale d'Équipement", "EUR", "Net 45", "", "45", "", "DAP", "SGE", None),
    (
        "SUP-1003",
        "402",
        "Lakeshore Office Supply Co.",
        "USD",
        "2/10 Net 30",
        "10",
        "30",
        "2.0",
        "FOB",
        "LOS",
        ("318", "Lakeshore Office Supply MSA 2026"),
    ),
    (
        "SUP-1004",
        "417",
        "Keystone Industrial Services LLC",
        "USD",
        "Net 60",
        "",
        "60",
        "",
        "",
        "KIS",
        ("327", "Keystone Service Agreement 2026-2027"),
    ),
    ("SUP-1005", "325", "Kühne Präzisionswerkzeuge KG", "EUR", "Net 30", "", "30", "", "FCA", "KPW", None),
    ("SUP-1006", "331", "Atelier Mécanique Bérard SARL", "EUR", "Net 60", "", "60", "", "DAP", "AMB", None),
    (
        "SUP-1007",
        "428",
        "Brightline Technology Partners Inc.",
        "USD",
        "Net 30",
        "",
        "30",
        "",
        "FOB",
        "BTP",
        ("341", "Brightline Hardware Frame 2026"),
    ),
    ("SUP-1008", "436", "Harbourside Packaging Ltd", "GBP", "3/15 Net 45", "15", "45", "3.0", "DDP", "HPL", None),
]

# description (<= 70 chars incl. line breaks), supplier part no, commodity, uom, typical price, quantity kind
# (int: whole units; dec1: one decimal, e.g. hours; dec3: weights/lengths; amount: amount-based line)
CATALOG = [
    (
        "Einweghandschuhe Nitril, puderfrei, Gr. L (100 Stk./Box)",
        "NIT-L-100",
        "MRO - Arbeitsschutz",
        "BOX",
        8.95,
        "int",
    ),
    ("Kabelbinder 300 x 4,8 mm, schwarz, UV-beständig (100 Stk.)", "KB-300-48-SW", "MRO - Elektro", "BOX", 6.40, "int"),
    (
        'Monitor 27" 4K UHD, USB-C 90 W, height-adjustable stand',
        "MON-27-4K-UC",
        "IT Hardware - Displays",
        "EA",
        329.99,
        "int",
    ),
    (
        "Copy paper, letter 8.5 x 11 in, 20 lb, 10 reams/case",
        "CP-LTR-20-10",
        "Office Supplies - Paper",
        "BOX",
        42.50,
        "int",
    ),
    ('Ergonomic task chair "Aeron" size B, graphite', "CHR-AER-B-GR", "Office Furniture", "EA", 1145.00, "int"),
    (
        'Armoire de sécurité "Classe 90"\n1195 × 615 × 1968 mm, 2 portes',
        "ASC-90-1195",
        "Équipement de sécurité",
        "EA",
        3480.00,
        "int",
    ),
    ("Bac de rétention acier galvanisé 220 L", "BR-220-GALV", "Équipement de sécurité", "EA", 189.50, "int"),
    (
        "Preventive maintenance, screw air compressors (3 units)",
        "KIS-PM-Q1",
        "Services - Maintenance",
        "EA",
        4250.00,
        "amount",
    ),
    (
        "Technician hours, on-site compressor repair (standard rate)",
        "KIS-TECH-STD",
        "Services - Maintenance",
        "HR",
        96.00,
        "dec1",
    ),
    (
        "Präzisions-Messschieber 0–150 mm\ndigital, IP67, mit Datenausgang",
        "PMS-150-D",
        "Messmittel",
        "EA",
        87.425,
        "int",
    ),
    ("Gewindebohrer-Satz M3–M12, HSS-E, 7-teilig", "GBS-M3-M12", "Werkzeuge - Zerspanung", "SET", 64.90, "int"),
    ("Roulement à billes 6204-2RS, 20 x 47 x 14 mm", "RB-6204-2RS", "Pièces détachées", "EA", 12.50, "int"),
    ("Graisse lithium EP2, cartouche 400 g", "GR-EP2-400", "Lubrifiants", "EA", 4.85, "int"),
    ("Sicherheitsschuhe S3 SRC, Gr. 43", "SS-S3-43", "MRO - Arbeitsschutz", "PAA", 79.90, "int"),
    ('Laptop docking station "Thunderbolt 4"', "DOCK-TB4", "IT Hardware - Accessories", "EA", 249.00, "int"),
    ("USB-C to DisplayPort 1.4 cable, 2 m", "CBL-UC-DP-2", "IT Hardware - Accessories", "EA", 12.45, "int"),
    ("Whiteboard markers, assorted colours (12-pack)", "WBM-12-AS", "Office Supplies", "PAK", 14.79, "int"),
    ("Stretch film 500 mm x 300 m, 23 µm, clear", "SF-500-23", "Packaging - Film", "ROL", 18.6375, "int"),
    ("Corrugated boxes 600 x 400 x 400 mm, double wall", "CB-640-DW", "Packaging - Boxes", "EA", 1.8425, "int"),
    ("Pallet wrap service, outbound, per pallet", "PWS-OUT", "Services - Logistics", "EA", 3.15, "int"),
    ("Industrial degreaser, 25 L canister", "DG-25L", "MRO - Chemicals", "EA", 96.30, "int"),
    ("Stahldraht verzinkt 2,0 mm\n(Meterware)", "SDV-20", "Rohmaterial", "M", 0.845, "dec3"),
    ("Aluminium Flachprofil 40 x 5 mm, EN AW-6060", "AFP-40-5", "Rohmaterial", "KG", 6.284, "dec3"),
    ("Granulat PA6 GF30, schwarz", "PA6-GF30-SW", "Rohmaterial - Kunststoff", "KG", 3.9125, "dec3"),
    ("Hydraulic hose assembly 1/2 in, 1.5 m, crimped", "HHA-12-15", "MRO - Hydraulics", "EA", 58.75, "int"),
    ("Server rack 42U, 800 x 1000 mm, incl. PDU", "RACK-42-810", "IT Hardware - Datacenter", "EA", 2890.00, "int"),
    (
        "Laptop 14 in, 32 GB RAM, 1 TB SSD, 3-year warranty",
        "NB-14-32-1T",
        "IT Hardware - Notebooks",
        "EA",
        1689.00,
        "int",
    ),
    ("Software subscription, CAD seat, 12 months", "CAD-SUB-12", "Software - Subscriptions", "EA", 2450.00, "amount"),
    (
        "CNC-Fräsmaschine Wartungsvertrag 2027\nHalbjahr 1",
        "CNC-WV-27H1",
        "Dienstleistung - Wartung",
        "EA",
        18500.00,
        "amount",
    ),
    ("Gabelstapler Elektro 1,6 t, Miete (Monat)", "GS-E16-M", "Miete - Fahrzeuge", "EA", 1240.00, "dec1"),
    ("Consulting day, process audit ISO 9001", "CONS-ISO-D", "Services - Consulting", "DAY", 1350.00, "dec1"),
    ('Safety goggles "Clear Vision", anti-fog', "SG-CV-AF", "MRO - PPE", "EA", 7.35, "int"),
    ("Coffee beans, espresso blend, 1 kg", "COF-ESP-1", "Facilities - Pantry", "KG", 21.90, "int"),
    ("Pièce usinée selon plan 4711-A\nacier C45, tolérance ±0,02", "PU-4711-A", "Pièces sur plan", "EA", 142.6, "int"),
    ("Label printer thermal 4 in, 203 dpi", "LBL-4-203", "IT Hardware - Printers", "EA", 412.00, "int"),
    ("Cleaning service, office floor 3, monthly", "CLN-F3-M", "Services - Facilities", "EA", 2180.00, "amount"),
    ("Ersatzteil-Set Pumpe KSB Etanorm 65-200", "ET-KSB-65200", "Ersatzteile", "SET", 960.00, "int"),
    ("Compressed air filter element, 0.01 µm", "CAF-001", "MRO - Pneumatics", "EA", 39.80, "int"),
]
QUANTITY_MAX = {"int": 60, "dec1": 40, "dec3": 500}

TRANSMISSION = ["sent_via_email"] * 7 + ["sent_via_cxml"] * 2 + ["sent_manually"]
# allocation splits: percent texts (10 decimals, decimal(16,10)) adding up to exactly 100
SPLITS = [
    ["50", "50"],
    ["60", "40"],
    ["70", "30"],
    ["75", "25"],
    ["80", "20"],
    ["90", "10"],
    ["50", "25", "25"],
    ["40", "30", "30"],
    ["60", "20", "20"],
    ["33.3333333334", "33.3333333333", "33.3333333333"],
]


def _check_pools() -> None:
    for item in CATALOG:
        assert len(item[0]) <= KTEXT_MAX, f"description longer than {KTEXT_MAX}: {item[0]!r}"
        assert len(item[3]) <= 3 and len(item[1]) <= 35
    for sup in SUPPLIERS:
        assert len(sup[2]) <= 35 and len(sup[4]) <= 17
    for parts in SPLITS:
        assert sum(Decimal(p) for p in parts) == 100


_check_pools()

SUPPLIERS_BY_CURRENCY = {c: [i for i, s in enumerate(SUPPLIERS) if s[3] == c] for c in ("EUR", "USD", "GBP")}
SITES_BY_CURRENCY = {c: [i for i, s in enumerate(SITES) if s.currency == c] for c in ("EUR", "USD", "GBP")}

# --------------------------------------------------------------------------- pools as polars series


def _series(name: str, values: list[str]) -> pl.Series:
    return pl.Series(name, values, dtype=pl.String)


def _person_block(p: tuple[str, ...]) -> str:
    return block(*p)


class _Pools:
    """Pre-quoted text pieces, gathered by index per row."""

    def __init__(self) -> None:
        # sites: every site's people and accounts flattened, with start offsets
        self.site_currency = [s.currency for s in SITES]
        self.site_offset = _series("off", [s.offset for s in SITES])
        self.site_ship = _series(
            "ship",
            [block(s.city, s.address_id, s.name, s.postal, s.state, s.street1, s.street2, s.country) for s in SITES],
        )
        self.site_cost_center = _series("cc", [q(s.cost_center) for s in SITES])
        self.site_department = _series("dep", [q(s.department) for s in SITES])
        people, accounts = [], []
        self.people_start, self.people_count, self.acct_start, self.acct_count = [], [], [], []
        for s in SITES:
            self.people_start.append(len(people))
            self.people_count.append(len(s.people))
            people.extend(s.people)
            self.acct_start.append(len(accounts))
            self.acct_count.append(len(s.accounts))
            accounts.extend(s.accounts)
        self.person_block = _series("pb", [_person_block(p) for p in people])
        self.person_email = _series("pe", [q(p[0]) for p in people])
        self.person_rest = _series("pr", [block(*p[1:]) for p in people])
        self.person_name = _series("pn", [q(f"{p[2]} {p[4]}") for p in people])
        # account code | segments 1..20 | name | chart
        self.acct_code = _series("ac", [q(a[0]) for a in accounts])
        self.acct_rest = _series(
            "ar", [block(*a[0].split("-"), *[""] * (20 - len(a[0].split("-"))), a[1], a[2]) for a in accounts]
        )
        buyers = [(c, p) for c, ps in BUYERS.items() for p in ps]
        self.buyer_currency_start = {}
        for i, (c, _) in enumerate(buyers):
            self.buyer_currency_start.setdefault(c, i)
        self.buyer_count = {c: len(ps) for c, ps in BUYERS.items()}
        self.buyer_block = _series("bb", [_person_block(p) for _, p in buyers])
        self.buyer_email = _series("be", [q(p[0]) for _, p in buyers])
        self.buyer_rest = _series("br", [block(*p[1:]) for _, p in buyers])
        self.sup_block = _series("sb", [block(s[1], s[2], s[0]) for s in SUPPLIERS])
        self.sup_terms = _series("st", [block(*s[4:9]) for s in SUPPLIERS])
        self.sup_currency = _series("sc", [s[3] for s in SUPPLIERS])
        self.sup_prefix = _series("sp", [s[9] for s in SUPPLIERS])
        self.sup_contract = _series("sk", [block(*(s[10] or ("", ""))) for s in SUPPLIERS])
        self.item_desc = _series("d", [q(c[0]) for c in CATALOG])
        self.item_part = _series("p", [q(c[1]) for c in CATALOG])
        self.item_commodity = _series("c", [q(c[2]) for c in CATALOG])
        self.item_uom = _series("u", [q(c[3]) for c in CATALOG])


POOLS = _Pools()


# --------------------------------------------------------------------------- random columns


def _u32(rng: random.Random, n: int) -> pl.Series:
    """n uniform 32-bit integers from the seeded generator (fast: one randbytes call)."""
    values = array.array("I")
    assert values.itemsize == 4
    values.frombytes(rng.randbytes(4 * n))
    if sys.byteorder == "big":
        values.byteswap()
    return pl.Series(values.tolist(), dtype=pl.Int64)


def _uniform(col: str) -> pl.Expr:
    return (pl.col(col).cast(pl.Float64) + 0.5) / 4294967296.0


def _normal(a: str, b: str) -> pl.Expr:
    """A standard normal value from two uniform columns (Box-Muller)."""
    return (-2.0 * _uniform(a).log()).sqrt() * (2.0 * 3.141592653589793 * _uniform(b)).cos()


def _fixed(value: pl.Expr, scale: int, shown: pl.Expr | int) -> pl.Expr:
    """Integer ``value`` in units of 10**-scale as text with ``shown`` decimals (digits beyond are zero)."""
    unit = 10**scale
    whole = (value // unit).cast(pl.String)
    frac = (value % unit).cast(pl.String).str.pad_start(scale, "0")
    shown_expr = shown if isinstance(shown, pl.Expr) else pl.lit(shown)
    return pl.when(shown_expr > 0).then(whole + "." + frac.str.slice(0, shown_expr)).otherwise(whole)


def _cents_text(cents: pl.Expr) -> pl.Expr:
    sign = pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return sign + _fixed(cents.abs(), 2, 2)


def _concat(pieces: list[pl.Expr | str]) -> pl.Expr:
    """A row's text from literal pieces and expressions (adjacent literals merged)."""
    merged: list[pl.Expr | str] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in merged])


def _empties(n: int) -> str:
    return ",".join(['""'] * n)


# --------------------------------------------------------------------------- one chunk of POs


@dataclass
class Counters:
    line_id: int = FIRST_LINE_ID
    allocation_id: int = FIRST_ALLOCATION_ID
    requisition_line: int = 40_000


def _chunk(
    first: int,
    count: int,
    pos_per_file: int,
    lines_per_po: float,
    exact_lines: bool,
    seed: int,
    chunk_no: int,
    counters: Counters,
) -> pl.DataFrame:
    """Rows (file, text) of POs [first, first+count), in file order."""
    rng = random.Random(f"batchsync-bench:{seed}:{chunk_no}")
    P = POOLS
    n = count
    h = pl.DataFrame(
        {
            "po": pl.int_range(first, first + n, eager=True, dtype=pl.Int64),
            **{f"r{i}": _u32(rng, n) for i in range(10)},
        }
    )
    cur_names = ["EUR", "USD", "GBP"]
    # currency mix: EUR 50 %, USD 40 %, GBP 10 %; supplier and site within the currency
    h = h.with_columns(
        pl.when(pl.col("r0") % 10 < 5).then(0).when(pl.col("r0") % 10 < 9).then(1).otherwise(2).alias("cur")
    )
    sup_lists = [SUPPLIERS_BY_CURRENCY[c] for c in cur_names]
    site_lists = [SITES_BY_CURRENCY[c] for c in cur_names]

    # supplier and site among those of the PO's currency
    sup_idx = pl.Series([sup_lists[c][r % len(sup_lists[c])] for c, r in zip(h["cur"], h["r1"], strict=True)])
    site_idx = pl.Series([site_lists[c][r % len(site_lists[c])] for c, r in zip(h["cur"], h["r2"], strict=True)])
    h = h.with_columns(sup_idx.alias("sup"), site_idx.alias("site"))
    people_start = pl.Series(P.people_start, dtype=pl.Int64)
    people_count = pl.Series(P.people_count, dtype=pl.Int64)
    buyer_start = pl.Series([P.buyer_currency_start[c] for c in cur_names], dtype=pl.Int64)
    buyer_count = pl.Series([P.buyer_count[c] for c in cur_names], dtype=pl.Int64)
    h = h.with_columns(
        (
            pl.lit(people_start).gather(pl.col("site")) + pl.col("r3") % pl.lit(people_count).gather(pl.col("site"))
        ).alias("req"),
        (pl.lit(buyer_start).gather(pl.col("cur")) + pl.col("r4") % pl.lit(buyer_count).gather(pl.col("cur"))).alias(
            "buyer"
        ),
        (pl.lit(EPOCH) + pl.duration(seconds=pl.col("r5") % (7 * 86400))).alias("created"),
        (pl.col("r6") % (36 * 3600) + 600).alias("upd_delay"),
        pl.when(pl.col("r7") % 10 < 9).then(1).otherwise(2 + pl.col("r7") % 2).alias("version"),
        (pl.col("r8") % 1000 + 1).alias("r8m"),
    )
    if exact_lines or lines_per_po < 1:
        nlines = pl.lit(max(1, round(lines_per_po)), dtype=pl.Int64)
    else:
        span = max(1, round(2 * lines_per_po - 1))
        nlines = pl.col("r9") % span + 1
    h = h.with_columns(
        nlines.alias("nlines"),
        (pl.col("po") // pos_per_file).alias("file"),
        pl.lit(P.site_offset).gather(pl.col("site")).alias("offset"),
    ).with_columns(
        (pl.col("created").dt.strftime("%Y-%m-%dT%H:%M:%S") + pl.col("offset")).alias("created_at"),
        (
            (pl.col("created") + pl.duration(seconds=pl.col("upd_delay"))).dt.strftime("%Y-%m-%dT%H:%M:%S")
            + pl.col("offset")
        ).alias("updated_at"),
        (pl.col("po") + FIRST_PO_ID).cast(pl.String).alias("po_id"),
        pl.col("version").cast(pl.String).alias("version_s"),
    )

    # ---------------------------------------------------------------- lines
    lines = h.select(
        "po",
        "file",
        "site",
        "sup",
        "cur",
        "buyer",
        "created",
        "offset",
        "created_at",
        "updated_at",
        "po_id",
        "version_s",
        pl.int_ranges(1, pl.col("nlines") + 1).alias("ln"),
    ).explode("ln")
    m = lines.height
    lines = lines.with_columns(**{f"s{i}": _u32(rng, m) for i in range(8)})
    line_ids = pl.int_range(counters.line_id, counters.line_id + m, eager=True, dtype=pl.Int64)
    counters.line_id += m
    req_lines = pl.int_range(counters.requisition_line, counters.requisition_line + m, eager=True, dtype=pl.Int64)
    counters.requisition_line += m
    items = len(CATALOG)
    base = pl.Series([c[4] for c in CATALOG], dtype=pl.Float64)
    kind_code = {"int": 0, "dec1": 1, "dec3": 2, "amount": 3}
    kinds = pl.Series([kind_code[c[5]] for c in CATALOG], dtype=pl.Int64)
    item_decimals = pl.Series([max(2, len(f"{c[4]:.4f}".rstrip("0").split(".")[1])) for c in CATALOG], dtype=pl.Int64)
    qmax = pl.Series([QUANTITY_MAX.get(c[5], 1) for c in CATALOG], dtype=pl.Int64)
    lines = lines.with_columns(
        line_ids.alias("line_id"),
        req_lines.alias("req_line"),
        # each supplier sells a window of the catalog (its items, plus a few shared ones)
        ((pl.col("sup") * items // len(SUPPLIERS) + pl.col("s0") % 12) % items).alias("item"),
    ).with_columns(
        pl.lit(kinds).gather(pl.col("item")).alias("kind"),
        # 4-decimal price units; a price varies +-15 % (lognormal) around the item's typical price
        (pl.lit(base).gather(pl.col("item")) * (0.15 * _normal("s1", "s2")).exp()).alias("price_f"),
        pl.lit(item_decimals).gather(pl.col("item")).alias("pdec"),
        pl.lit(qmax).gather(pl.col("item")).alias("qmax"),
    )
    # price decimals: the item's own (2..4), amount-based lines always 2
    pdec = pl.when(pl.col("kind") == 3).then(2).otherwise(pl.col("pdec"))
    step = pl.lit(10) ** (4 - pdec)
    lines = lines.with_columns(pdec.alias("pdec"), step.alias("pstep"))
    lines = lines.with_columns(
        ((pl.col("price_f") * 10000 / pl.col("pstep")).round(0).cast(pl.Int64).clip(1) * pl.col("pstep")).alias("p4")
    )
    # quantity in 1/1000 units: whole (skewed to small), one decimal, three decimals; amount lines none
    u = _uniform("s3")
    whole = (pl.col("qmax").cast(pl.Float64) ** u).floor().cast(pl.Int64).clip(1)
    q3 = (
        pl.when(pl.col("kind") == 0)
        .then(whole * 1000)
        .when(pl.col("kind") == 1)
        .then((pl.col("s4") % (pl.col("qmax") * 10) + 1) * 100)
        .when(pl.col("kind") == 2)
        .then(pl.col("s4") % (pl.col("qmax") * 1000) + 1)
        .otherwise(None)
    )
    qshown = pl.when(pl.col("kind") == 2).then(3).when(pl.col("s5") % 3 == 0).then(0).otherwise(1)
    lines = lines.with_columns(
        _fixed(pl.col("p4"), 4, pl.col("pdec")).alias("price"),
        q3.alias("q3"),
    ).with_columns(
        pl.when(pl.col("q3").is_null()).then(pl.lit("")).otherwise(_fixed(pl.col("q3"), 3, qshown)).alias("quantity"),
    )
    # the validator's own arithmetic: round(float(price) * float(quantity), 2)
    expected = (pl.col("price").cast(pl.Float64) * pl.col("quantity").cast(pl.Float64, strict=False)).round(2)
    cents = pl.when(pl.col("kind") == 3).then(pl.col("p4") // 100).otherwise((expected * 100).round(0).cast(pl.Int64))
    need_by = (pl.col("created").dt.date() + pl.duration(days=pl.col("s6") % 60 + 5)).dt.strftime("%Y-%m-%d")
    acct = pl.lit(pl.Series(P.acct_start, dtype=pl.Int64)).gather(pl.col("site")) + (
        pl.col("s7") % 997 % pl.lit(pl.Series(P.acct_count, dtype=pl.Int64)).gather(pl.col("site"))
    )
    lines = lines.with_columns(
        cents.alias("cents"),
        (need_by + "T00:00:00" + pl.col("offset")).alias("need_by"),
        acct.alias("acct"),
        # about 12 % of lines are split-accounted over 2 or 3 accounts
        pl.when(pl.col("s7") % 100 < 12).then(pl.col("s5") // 3 % len(SPLITS)).otherwise(None).alias("split"),
    )
    lines = lines.with_columns(_cents_text(pl.col("cents")).alias("total"))

    # ---------------------------------------------------------------- header totals
    totals = lines.group_by("po").agg(pl.col("cents").sum().alias("po_cents"))
    h = h.join(totals, on="po", how="left", maintain_order="left")

    # ---------------------------------------------------------------- allocations
    split_rows = [
        (i, k + 1, f"{Decimal(pct):.10f}", len(parts)) for i, parts in enumerate(SPLITS) for k, pct in enumerate(parts)
    ]
    splits = pl.DataFrame(
        {
            "split": [r[0] for r in split_rows],
            "seq": [r[1] for r in split_rows],
            "pct_text": [r[2] for r in split_rows],
            "nparts": [r[3] for r in split_rows],
        },
        schema={"split": pl.Int64, "seq": pl.Int64, "pct_text": pl.String, "nparts": pl.Int64},
    )
    alloc = (
        lines.filter(pl.col("split").is_not_null())
        .select("po", "file", "po_id", "line_id", "ln", "cents", "split", "site", "acct")
        .join(splits, on="split", how="inner")
        .sort("po", "ln", "seq")
    )
    a = alloc.height
    alloc = alloc.with_columns(
        pl.int_range(counters.allocation_id, counters.allocation_id + a, eager=True, dtype=pl.Int64).alias("alloc_id"),
        (pl.col("cents").cast(pl.Float64) * pl.col("pct_text").cast(pl.Float64) / 100)
        .round(0)
        .cast(pl.Int64)
        .alias("part"),
    )
    counters.allocation_id += a
    alloc = alloc.with_columns(
        pl.when(pl.col("seq") == pl.col("nparts"))
        .then(pl.col("cents") - (pl.col("part").sum() - pl.col("part").last()).over("line_id"))
        .otherwise(pl.col("part"))
        .alias("amount_cents"),
        # each split line's parts go to consecutive accounts of its site
        (
            pl.lit(pl.Series(P.acct_start, dtype=pl.Int64)).gather(pl.col("site"))
            + (
                pl.col("acct")
                - pl.lit(pl.Series(P.acct_start, dtype=pl.Int64)).gather(pl.col("site"))
                + pl.col("seq")
                - 1
            )
            % pl.lit(pl.Series(P.acct_count, dtype=pl.Int64)).gather(pl.col("site"))
        ).alias("acct"),
    )

    # ---------------------------------------------------------------- row texts
    g = pl.lit  # pool series as literals, gathered per row
    c = ","
    header_text = _concat(
        [
            '"Header","",',
            q_expr(pl.col("created_at")),
            c,
            q_expr(pl.col("po_id")),
            ',"issued",',
            q_expr(g(pl.Series(TRANSMISSION)).gather(pl.col("r8") % len(TRANSMISSION))),
            c,
            q_expr(pl.col("updated_at")),
            c,
            q_expr(pl.col("version_s")),
            c,
            q_expr(pl.col("version_s")),
            ',"false",',
            g(P.buyer_email).gather(pl.col("buyer")),
            c,
            q_expr(_cents_text(pl.col("po_cents"))),
            c,
            q_expr(g(P.sup_currency).gather(pl.col("sup"))),
            c,
            g(P.buyer_rest).gather(pl.col("buyer")),
            c,
            q_expr((pl.col("po") + 70_000).cast(pl.String)),
            c,
            g(P.person_block).gather(pl.col("req")),
            c,
            g(P.person_name).gather(pl.col("req")),
            c,
            g(P.site_ship).gather(pl.col("site")),
            c,
            g(P.person_block).gather(pl.col("req")),
            c,
            g(P.sup_block).gather(pl.col("sup")),
            c,
            g(P.buyer_block).gather(pl.col("buyer")),
            c,
            g(P.sup_terms).gather(pl.col("sup")),
            ',"",',
            pl.when(pl.col("r8m") <= 300).then(g(P.site_cost_center).gather(pl.col("site"))).otherwise(pl.lit('""')),
            c,
            _empties(9),
            c,
            _empties(ROW_WIDTH - HEADER_WIDTH),
        ]
    )
    is_amount = pl.col("kind") == 3
    line_text = _concat(
        [
            '"Line",',
            q_expr(pl.col("total")),
            c,
            q_expr(g(P.sup_currency).gather(pl.col("sup"))),
            c,
            q_expr(pl.col("created_at")),
            c,
            g(P.item_desc).gather(pl.col("item")),
            c,
            q_expr(pl.col("line_id").cast(pl.String)),
            ',"0.00","0.00",',
            q_expr(pl.col("ln").cast(pl.String)),
            c,
            q_expr(pl.col("need_by")),
            c,
            q_expr(pl.col("po_id")),
            c,
            q_expr(pl.col("price")),
            c,
            q_expr(pl.col("quantity")),
            c,
            pl.when(is_amount).then(pl.lit('""')).otherwise(pl.lit('"0.0"')),
            c,
            g(P.item_part).gather(pl.col("item")),
            ',"issued","",',
            q_expr(g(P.sup_prefix).gather(pl.col("sup")) + "-" + (pl.col("s0") % 90000 + 10000).cast(pl.String)),
            c,
            q_expr(pl.col("total")),
            c,
            q_expr(g(P.sup_currency).gather(pl.col("sup"))),
            c,
            pl.when(is_amount).then(pl.lit('"OrderAmountLine"')).otherwise(pl.lit('"OrderQuantityLine"')),
            c,
            q_expr(pl.col("updated_at")),
            c,
            q_expr(pl.col("version_s")),
            c,
            g(P.acct_code).gather(pl.col("acct")),
            c,
            g(P.acct_rest).gather(pl.col("acct")),
            c,
            pl.when(pl.col("s6") % 4 == 0).then(g(P.sup_contract).gather(pl.col("sup"))).otherwise(pl.lit('"",""')),
            c,
            g(P.site_department).gather(pl.col("site")),
            c,
            g(P.buyer_block).gather(pl.col("buyer")),
            c,
            g(P.sup_block).gather(pl.col("sup")),
            c,
            g(P.item_uom).gather(pl.col("item")),
            c,
            g(P.buyer_block).gather(pl.col("buyer")),
            c,
            g(P.item_commodity).gather(pl.col("item")),
            c,
            q_expr(pl.col("req_line").cast(pl.String)),
            c,
            _empties(10),
        ]
    )
    alloc_text = _concat(
        [
            '"Allocation",',
            q_expr(pl.col("po_id")),
            c,
            q_expr(pl.col("line_id").cast(pl.String)),
            c,
            q_expr(pl.col("ln").cast(pl.String)),
            c,
            q_expr(pl.col("alloc_id").cast(pl.String)),
            c,
            q_expr(pl.col("seq").cast(pl.String)),
            c,
            q_expr(_cents_text(pl.col("amount_cents"))),
            c,
            q_expr(pl.col("pct_text")),
            c,
            g(P.acct_code).gather(pl.col("acct")),
            ',"true",',
            g(P.acct_rest).gather(pl.col("acct")),
            c,
            _empties(10),
            c,
            _empties(ROW_WIDTH - ALLOCATION_WIDTH),
        ]
    )
    rows = pl.concat(
        [
            h.select(
                "file",
                "po",
                pl.lit(0).alias("k"),
                pl.lit(0, pl.Int64).alias("ln"),
                pl.lit(0, pl.Int64).alias("seq"),
                header_text.alias("text"),
            ),
            lines.select(
                "file",
                "po",
                pl.lit(1).alias("k"),
                pl.col("ln").cast(pl.Int64),
                pl.lit(0, pl.Int64).alias("seq"),
                line_text.alias("text"),
            ),
            alloc.select(
                "file",
                "po",
                pl.lit(2).alias("k"),
                pl.col("ln").cast(pl.Int64),
                pl.col("seq").cast(pl.Int64),
                alloc_text.alias("text"),
            ),
        ],
        how="vertical_relaxed",
    )
    return rows.sort("po", "k", "ln", "seq").select("file", "text")


def q_expr(value: pl.Expr) -> pl.Expr:
    """A quoted field from an expression whose text never holds a quote (ids, numbers, dates, codes)."""
    return pl.lit('"') + value + pl.lit('"')


# --------------------------------------------------------------------------- files


def file_name(index: int) -> str:
    return f"OrderHeader_{(FILE_STAMP + timedelta(minutes=index)).strftime('%Y%m%d_%H%M%S')}Z.csv"


def name_rows() -> str:
    from batchsync.kinds.purchase_orders.layout import PO_ALLOCATION, PO_HEADER, PO_LINE

    out = []
    for word, cols in (("Header", PO_HEADER), ("Line", PO_LINE), ("Allocation", PO_ALLOCATION)):
        out.append(block(word, *cols[1:], *[""] * (ROW_WIDTH - len(cols))))
    return "\n".join(out) + "\n"


def generate(
    out_dir: Path,
    *,
    files: int = 1,
    pos_per_file: int = 1000,
    lines_per_po: float = 5,
    seed: int = 7,
    exact_lines: bool = False,
    with_name_rows: bool = False,
    first_file: int = 0,
) -> list[Path]:
    """Write ``files`` PO exports into ``out_dir``; return their paths (name order = file order).

    ``lines_per_po`` is the mean: each PO gets 1 .. 2*L-1 lines (uniform), or
    exactly L with ``exact_lines``. Output depends only on the arguments.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    total = files * pos_per_file
    counters = Counters()
    paths = [out_dir / file_name(first_file + i) for i in range(files)]
    for p in paths:
        p.write_text(name_rows() if with_name_rows else "", encoding="utf-8")
    for chunk_no, first in enumerate(range(0, total, CHUNK_POS)):
        count = min(CHUNK_POS, total - first)
        rows = _chunk(first, count, pos_per_file, lines_per_po, exact_lines, seed, chunk_no, counters)
        for (file_index,), part in rows.partition_by("file", maintain_order=True, as_dict=True).items():
            with paths[int(file_index)].open("ab") as stream:
                part.select("text").write_csv(stream, include_header=False, quote_style="never")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--pos-per-file", type=int, default=1000)
    parser.add_argument("--lines-per-po", type=float, default=5)
    parser.add_argument("--exact-lines", action="store_true", help="every PO gets exactly --lines-per-po lines")
    parser.add_argument("--name-rows", action="store_true", help="start each file with one column-name row per type")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    paths = generate(
        args.out_dir,
        files=args.files,
        pos_per_file=args.pos_per_file,
        lines_per_po=args.lines_per_po,
        seed=args.seed,
        exact_lines=args.exact_lines,
        with_name_rows=args.name_rows,
    )
    size = sum(p.stat().st_size for p in paths)
    print(f"{len(paths)} file(s), {size / 1e6:.1f} MB in {time.perf_counter() - started:.1f}s -> {args.out_dir}")


if __name__ == "__main__":
    main()
