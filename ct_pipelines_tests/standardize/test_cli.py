"""`rel map` through click's CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ct_pipelines.standardize.cli import rel


def _run(args: list[str], stdin: str | bytes = "") -> list[dict]:
    result = CliRunner().invoke(rel, ["map", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_one_json_line_per_input_line_in_order_including_empty_lines():
    out = _run(["--field", "race_ethnicity"], "Hispanic, White\n\nAsian, Other\nW\n")
    assert [o["raw"] for o in out] == ["Hispanic, White", "", "Asian, Other", "W"]
    assert (
        out[0]["hispanic"] is True
        and out[0]["omb1997"] == ["WHITE"]
        and out[0]["spd15"] == ["HISPANIC", "WHITE"]
    )
    assert out[1]["status"] == "not_collected"
    assert out[2]["omb1997"] == ["ASIAN"] and out[2]["two_or_more"] is False
    assert out[3]["status"] == "unmapped"
    for key in (
        "raw",
        "status",
        "hispanic",
        "omb1997",
        "spd15",
        "two_or_more",
        "detailed",
        "candidates",
        "language",
    ):
        assert all(key in o for o in out)


def test_raw_is_kept_exactly_and_crlf_is_a_line_ending():
    out = _run(["--field", "race"], b"  White \r\nBLACK\r\n")
    assert [o["raw"] for o in out] == ["  White ", "BLACK"]


def test_source_code_map():
    out = _run(["--field", "ethnicity", "--source", "ct_racial_profiling"], "H\nM\nN\n")
    assert [o["hispanic"] for o in out] == [True, False, False]
    assert out[1]["spd15"] == ["MENA"]


def test_code_map_file(tmp_path):
    path = tmp_path / "codes.yaml"
    path.write_text("race:\n  '1': White\n  '2': Black or African American\n", encoding="utf-8")
    out = _run(["--field", "race", "--code-map", str(path)], "1\n2\n3\n")
    assert [o["omb1997"] for o in out] == [["WHITE"], ["BLACK"], []]
    assert out[2]["status"] == "unmapped"


def test_language_field(tmp_path):
    path = tmp_path / "values.txt"
    path.write_text("Spanish or Spanish Creole\nKaren\nDeclined\n", encoding="utf-8")
    out = _run(["--field", "language", "--input", str(path)])
    assert [(o["status"], o["language"]) for o in out] == [
        ("reported", "spa"),
        ("ambiguous", None),
        ("declined", None),
    ]


def test_unknown_source_is_a_clear_error_without_traceback():
    result = CliRunner().invoke(rel, ["map", "--field", "race", "--source", "nope"], input="W\n")
    assert result.exit_code == 2
    assert "known sources" in result.output and "Traceback" not in result.output


def test_thousands_of_lines_one_answer_each_in_order():
    lines = "\n".join(["White", "Hispanic, Black", "Asian/Pacific Islander", "Unknown", "Klingon"] * 2000)
    out = _run(["--field", "race_ethnicity"], lines)
    assert len(out) == 10000
    assert [o["status"] for o in out[:5]] == ["reported", "reported", "ambiguous", "unknown", "unmapped"]
    assert out[5:10] == out[:5]


def test_language_lines_show_multiple_languages_with_candidates():
    out = _run(["--field", "language"], "Spanish/English\nzh-Hant\nChinese (Mandarin)\nASL\n")
    assert [(o["status"], o["language"], o["candidates"]) for o in out] == [
        ("multiple", None, ["spa", "eng"]),
        ("reported", "zho", []),
        ("reported", "cmn", []),
        ("reported", "ase", []),
    ]
