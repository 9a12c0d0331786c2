"""The naive pipeline bench_pipeline compares against: what a first attempt with the usual packages does.

    python -m bench.naive_pipeline EXTRACT.csv PORTAL_DIR

pandas read_csv of the whole file, pandera on pandas (the same rules as the benchmark's YAML), GX 1.x on
pandas (the same expectations), a dict for REL, pandas groupby by town and group with counts 1-5 masked,
and sodapy upserts to a local portal it starts itself. Prints one line of figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

USERNAME, PASSWORD = "bench", "bench-password"


def rel_dicts() -> tuple[dict[str, str], dict[str, str]]:
    """Hand-written lookups, as a user would: each raw label (lower-cased) to a reporting group / language."""
    from ct_pipelines.samples.generate import LANGUAGES, RACE_LABELS

    def group(label: str) -> str:
        text = label.lower()
        if "hispanic" in text and "not" not in text and "non" not in text:
            return "Hispanic"
        for word, name in (("white", "White"), ("black", "Black"), ("african", "Black"), ("asian", "Asian")):
            if word in text:
                return name
        return "Unknown"

    return {r.strip().lower(): group(r) for r in RACE_LABELS}, {
        x.strip().lower(): x.title() for x in LANGUAGES
    }


def validate(frame):  # noqa: ANN001, ANN201 - pandas objects
    import pandas as pd
    import pandera.pandas as pa

    from bench.bench_pipeline import EXPECTATIONS
    from bench.harness import naive_pandas_checks
    from ct_pipelines.validate.custom_checks import CT_TOWNS

    frame["event_date"] = pd.to_datetime(frame["event_date"], format="%m/%d/%Y", errors="coerce")
    for column in ("age", "amount", "visits"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    towns = {t.lower() for t in CT_TOWNS}
    schema = pa.DataFrameSchema(
        {
            "record_id": pa.Column(str, pa.Check.str_matches(r"^R[0-9]{9}$"), nullable=False, unique=True),
            "event_date": pa.Column("datetime64[ns]", pa.Check.le(pd.Timestamp.now()), nullable=False),
            "town": pa.Column(str, pa.Check(lambda s: s.str.lower().isin(towns)), nullable=False),
            "age": pa.Column(float, pa.Check.in_range(0, 120), nullable=True),
            "sex": pa.Column(str, pa.Check.isin(["F", "M", "Female", "Male", "U"]), nullable=True),
            "race_ethnicity": pa.Column(str, nullable=False),
            "primary_language": pa.Column(str, nullable=False),
            "amount": pa.Column(float, pa.Check.in_range(0, 10000), nullable=True),
            "visits": pa.Column(float, pa.Check.in_range(0, 100), nullable=True),
            "status": pa.Column(str, pa.Check.isin(["Open", "Closed", "Pending"])),
        }
    )
    return naive_pandas_checks(frame, schema, [(e["expectation"], e["kwargs"]) for e in EXPECTATIONS])


def publish(table, portal_dir: Path) -> int:  # noqa: ANN001 - a pandas DataFrame
    from requests.adapters import HTTPAdapter
    from sodapy import Socrata

    from ct_pipelines.portal.local import LocalPortal

    columns = [
        {"fieldName": "town", "name": "town", "dataTypeName": "text"},
        {"fieldName": "rel_reporting_group", "name": "rel_reporting_group", "dataTypeName": "text"},
        {"fieldName": "count", "name": "count", "dataTypeName": "number"},
    ]
    with LocalPortal(portal_dir, username=USERNAME, password=PASSWORD) as portal:
        client = Socrata(
            portal.domain, None, username=USERNAME, password=PASSWORD, timeout=300,
            session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
        )  # fmt: skip
        four_by_four = client.create("naive", columns=columns)["id"]
        client.publish(four_by_four)
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        created = 0
        for start in range(0, len(records), 10_000):
            created += client.upsert(four_by_four, records[start : start + 10_000])["Rows Created"]
        client.close()
    return created


def main() -> None:
    import pandas as pd

    extract, portal_dir = Path(sys.argv[1]), Path(sys.argv[2])
    frame = pd.read_csv(extract, dtype=str, keep_default_na=False)
    frame.columns = [c.lower().replace("/", "_").replace(" ", "_") for c in frame.columns]
    failures, gx_success = validate(frame)
    groups, languages = rel_dicts()
    frame["rel_reporting_group"] = (
        frame["race_ethnicity"].str.strip().str.lower().map(groups).fillna("Unknown")
    )
    frame["language"] = frame["primary_language"].str.strip().str.lower().map(languages)
    frame = frame.drop(columns=["notes"])
    table = frame.groupby(["town", "rel_reporting_group"]).size().reset_index(name="count")
    table["count"] = table["count"].astype("Int64").mask(table["count"].between(1, 5))
    created = publish(table, portal_dir)
    print(
        f"naive: {len(frame):,} rows, {failures:,} pandera failure cases, GX success {gx_success}, {created:,} published"
    )


if __name__ == "__main__":
    main()
