"""The built-in processors on local files: values, outputs, options and errors."""

from __future__ import annotations

import csv
import io
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parceler.errors import (
    DeadlineExceededError,
    ProcessorError,
    SpecError,
    ValueOutOfRangeError,
)
from parceler.models import DATA_FILE_SCHEMA
from parceler.processors import GroupContext, check_processor, run_group, top_words
from parceler.processors.builtins import wordcount
from parceler.spec import ProcessorSpec, ReducerSpec
from tests.unit.files import local_files as _files

SUM = ReducerSpec(name="sum")


def _ctx(tmp_path: Path) -> GroupContext:
    return GroupContext("job1", 0, 1, str(tmp_path / "out"))


def _builtin(name: str, **options: Any) -> ProcessorSpec:
    return ProcessorSpec(kind="builtin", name=name, options=options)


# -- wordcount -------------------------------------------------------------------------------


def test_wordcount_counts_words_across_files_exactly(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        {"a.txt": b"The cat, the hat.\nDon't stop\n", "b.txt": "the caf\xe9 caf\xe9".encode()},
    )
    outcome = run_group(_builtin("wordcount"), SUM, files, _ctx(tmp_path))
    assert outcome.value == {
        "total_words": 9,
        "words": {"the": 3, "cat": 1, "hat": 1, "don't": 1, "stop": 1, "café": 2},
    }
    assert top_words(outcome.value, 2) == [("the", 3), ("café", 2)]


@pytest.mark.parametrize("block_chars", [1, 5, 64])
def test_wordcount_blocks_never_cut_a_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_chars: int
) -> None:
    rng = random.Random(block_chars)
    vocabulary = ["a", "bb", "don't", "caf\xe9", "\u03a3\u03c3\u03c2", "longerword", "x_1"]
    lines = [" ".join(rng.choices(vocabulary, k=rng.randint(0, 12))) for _ in range(40)]
    text = "\r\n".join(lines[:20]) + "\n" + "\n".join(lines[20:]) + "\nno final break"
    expected = Counter(
        w for line in text.splitlines() for w in re.findall(r"\w+(?:['\u2019]\w+)*", line.lower())
    )
    monkeypatch.setattr(wordcount, "_BLOCK_CHARS", block_chars)
    files = _files(tmp_path, {"t.txt": text.encode()})
    outcome = run_group(_builtin("wordcount"), SUM, files, _ctx(tmp_path))
    assert outcome.value == {"total_words": expected.total(), "words": dict(expected)}


# The tokenizer before the split-based one (issue 13): the definition of a word.
_OLD_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")
# Word characters of many scripts, both apostrophes, ASCII and Unicode punctuation and
# whitespace (no-break, em and ideographic spaces, \x1c), a combining accent (not \w),
# U+FFFD (what undecodable bytes become), emoji, underscores, digits of other scripts.
_VARIED = (
    "aZ9_ '\u2019.,;:!?\"()-\t\n\r\x00\x1c\u00a0\u2003\u3000\u2014\u201c\u201d\u00e9\u0301"
    "\u03a3\u03c2\u212a\u1e9e\u0416\u4e2d\u6587\u0661\u00bd\u2163\ufffd\U0001f600\u00df\u0130"
)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("lowercase", [True, False])
def test_wordcount_counts_what_the_old_regex_tokenizer_counted(
    tmp_path: Path, seed: int, lowercase: bool
) -> None:
    rng = random.Random(seed)
    # Text without Σ is lower-cased word by word, text with it whole: both are checked.
    alphabet = _VARIED if seed % 2 else _VARIED.replace("\u03a3", "")
    words = [
        "don't",
        "it\u2019s",
        "'quoted'",
        "a''b",
        "rock'n'roll",
        "x_1",
        "caf\u00e9",
        "\u0130stanbul",
    ]
    pieces = [
        rng.choice(words)
        if rng.random() < 0.3
        else "".join(rng.choices(alphabet, k=rng.randint(1, 8)))
        for _ in range(2000)
    ]
    text = "".join(pieces)
    expected = Counter(_OLD_WORD.findall(text.lower() if lowercase else text))
    files = _files(tmp_path, {"t.txt": text.encode()})
    value = run_group(_builtin("wordcount", lowercase=lowercase), SUM, files, _ctx(tmp_path)).value
    assert value == {"total_words": expected.total(), "words": dict(expected)}
    assert expected.total() > 500  # the text is mostly words: a tokenizer finding none fails


def test_wordcount_checks_the_deadline_before_each_file(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.txt": b"one", "b.txt": b"two"})
    late = GroupContext("job1", 0, 1, str(tmp_path / "out"), time.monotonic() - 1)
    with pytest.raises(DeadlineExceededError, match=r"before .*a\.txt"):
        run_group(_builtin("wordcount"), SUM, files, late)


def test_wordcount_top_trims_the_group_value(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.txt": b"a a a b b c"})
    outcome = run_group(_builtin("wordcount", top=2), SUM, files, _ctx(tmp_path))
    assert outcome.value == {"total_words": 6, "words": {"a": 3, "b": 2}}


def test_wordcount_rejects_bad_options() -> None:
    with pytest.raises(SpecError, match="'top' is 0"):
        check_processor(_builtin("wordcount", top=0))
    with pytest.raises(SpecError, match=r"no option.*'topp'"):
        check_processor(_builtin("wordcount", topp=3))


def test_unknown_builtin_lists_the_names() -> None:
    with pytest.raises(SpecError, match=r"no built-in processor 'grep'.*csv-groupby"):
        check_processor(_builtin("grep"))


# -- linecount -------------------------------------------------------------------------------


def test_linecount(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a": b"1\n2\n", "b": b"1\n2\n3", "c": b""})
    outcome = run_group(_builtin("linecount"), SUM, files, _ctx(tmp_path))
    assert outcome.value == {"lines": 5, "bytes": 9, "files": 3}


# -- csv-groupby -----------------------------------------------------------------------------


def _taxi_csv(rng: random.Random, n_rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["vendor", "pickup", "passenger_count", "fare"])
    for i in range(n_rows):
        passengers = rng.choice(["1", "1", "1", "2", "3", "5", "", "0"])
        fare = rng.choice(["7", "12.5", "", "3"])
        writer.writerow(
            [rng.choice(["CMT", "VTS", "DDS, Inc"]), f"2009-01-{i % 28 + 1:02d}", passengers, fare]
        )
    return out.getvalue().encode()


def _direct(bodies: list[bytes], key: str, value: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for body in bodies:
        for row in csv.DictReader(io.StringIO(body.decode())):
            if value is None:
                result[row[key]] = result.get(row[key], 0) + 1
            elif row[value]:
                amount = float(row[value]) if "." in row[value] else int(row[value])
                result[row[key]] = result.get(row[key], 0) + amount
            else:
                result.setdefault(row[key], 0)
    return result


def test_csv_groupby_count_equals_a_direct_computation(tmp_path: Path) -> None:
    rng = random.Random(7)
    bodies = [_taxi_csv(rng, n) for n in (0, 1, 250, 40_000)]
    files = _files(tmp_path, {f"yellow_{i}.csv": body for i, body in enumerate(bodies)})
    outcome = run_group(
        _builtin("csv-groupby", column="passenger_count"), SUM, files, _ctx(tmp_path)
    )
    expected = _direct(bodies, "passenger_count")
    assert outcome.value == expected
    assert sum(outcome.value.values()) == 40_251
    assert "" in outcome.value  # empty fields are a key of their own


def test_csv_groupby_sum_equals_a_direct_computation(tmp_path: Path) -> None:
    rng = random.Random(11)
    bodies = [_taxi_csv(rng, n) for n in (10, 3000)]
    files = _files(tmp_path, {f"f{i}.csv": body for i, body in enumerate(bodies)})
    spec = _builtin("csv-groupby", column="vendor", agg="sum", value_column="fare")
    outcome = run_group(spec, SUM, files, _ctx(tmp_path))
    expected = _direct(bodies, "vendor", "fare")
    assert outcome.value.keys() == expected.keys()
    for key, amount in expected.items():
        assert outcome.value[key] == pytest.approx(amount)


def test_csv_groupby_without_header_by_index_and_delimiter(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.tsv": b"x\t1\ny\t2\nx\t3\n", "b.tsv": b"y\t10\n"})
    spec = _builtin("csv-groupby", column=0, header=False, delimiter="\t")
    assert run_group(spec, SUM, files, _ctx(tmp_path)).value == {"x": 2, "y": 2}
    spec = _builtin(
        "csv-groupby", column=0, header=False, delimiter="\t", agg="sum", value_column=1
    )
    value = run_group(spec, SUM, files, _ctx(tmp_path)).value
    assert value == {"x": 4, "y": 12}
    assert all(isinstance(v, int) for v in value.values())


def test_csv_groupby_invalid_rows_error_or_skip(tmp_path: Path) -> None:
    files = _files(tmp_path, {"bad.csv": b"k,v\na,1\nb,2,extra\na,3\n"})
    with pytest.raises(ProcessorError, match=r"csv-groupby failed on .*bad\.csv"):
        run_group(_builtin("csv-groupby", column="k"), SUM, files, _ctx(tmp_path))
    spec = _builtin("csv-groupby", column="k", invalid_rows="skip")
    assert run_group(spec, SUM, files, _ctx(tmp_path)).value == {"a": 2}


def test_csv_groupby_errors_name_the_file_and_column(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.csv": b"k,v\na,1\nb,seven\n"})
    spec = _builtin("csv-groupby", column="k", agg="sum", value_column="v")
    with pytest.raises(ProcessorError, match=r"column 'v' of .*a\.csv .*not a number"):
        run_group(spec, SUM, files, _ctx(tmp_path))
    with pytest.raises(ProcessorError, match=r"a\.csv.*'nope'"):
        run_group(_builtin("csv-groupby", column="nope"), SUM, files, _ctx(tmp_path))


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({}, "'column'"),
        ({"column": 2}, "column name"),
        ({"column": "k", "header": False}, "0-based column index"),
        ({"column": "k", "agg": "sum"}, "value_column"),
        ({"column": "k", "agg": "mean"}, "'count' or 'sum'"),
        ({"column": "k", "delimiter": ";;"}, "one character"),
    ],
)
def test_csv_groupby_rejects_bad_options(options: dict[str, Any], pattern: str) -> None:
    with pytest.raises(SpecError, match=pattern):
        check_processor(ProcessorSpec(kind="builtin", name="csv-groupby", options=options))


# -- parquet-compact -------------------------------------------------------------------------


def _write_parquet(path: Path, start: int, n_rows: int, row_group_size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": pa.array(range(start, start + n_rows), pa.int64()),
            "name": pa.array(
                [f"row-{i:08d}-{'x' * (i % 17)}" for i in range(start, start + n_rows)]
            ),
        }
    )
    pq.write_table(table, path, row_group_size=row_group_size, compression="none")


def _parquet_files(paths: list[Path]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"uri": str(p), "size": p.stat().st_size, "n_record": None, "etag": None} for p in paths],
        schema=DATA_FILE_SCHEMA,
    )


def test_parquet_compact_rolls_outputs_at_the_target_and_keeps_every_row(tmp_path: Path) -> None:
    paths = []
    for i in range(6):
        path = tmp_path / "in" / f"part-{i}.parquet"
        _write_parquet(path, i * 5000, 5000, row_group_size=500)
        paths.append(path)
    total_in = sum(p.stat().st_size for p in paths)
    target = total_in // 3
    spec = _builtin(
        "parquet-compact", target_size=target, row_group_size="64KiB", compression="none"
    )
    outcome = run_group(spec, SUM, _parquet_files(paths), _ctx(tmp_path))

    outputs = outcome.outputs.to_pylist()
    assert outcome.value == {"files_in": 6, "files_out": len(outputs), "rows": 30_000}
    assert 2 <= len(outputs) <= 6
    ids: list[int] = []
    for row in outputs:
        out = Path(row["uri"])
        assert out.parent == tmp_path / "out"
        assert row["size"] == out.stat().st_size
        parquet = pq.ParquetFile(out)
        assert row["n_record"] == parquet.metadata.num_rows
        # fewer, bigger row groups than the inputs' 500 rows each
        assert parquet.metadata.num_rows / parquet.num_row_groups > 500
        ids.extend(parquet.read().column("id").to_pylist())
    assert ids == list(range(30_000))
    # every file but the last reached the target; none is far past it
    for row in outputs[:-1]:
        assert row["size"] >= target


def test_parquet_compact_schema_mismatch_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "in" / "good.parquet"
    _write_parquet(good, 0, 10, row_group_size=10)
    odd = tmp_path / "in" / "odd.parquet"
    pq.write_table(pa.table({"id": pa.array([1], pa.int32())}), odd)
    with pytest.raises(ProcessorError, match=r"odd\.parquet has schema \[id: int32\]"):
        run_group(_builtin("parquet-compact"), SUM, _parquet_files([good, odd]), _ctx(tmp_path))


def test_parquet_compact_rejects_a_bad_size() -> None:
    with pytest.raises(SpecError, match="'target_size' is 'big'"):
        check_processor(_builtin("parquet-compact", target_size="big"))


# -- copy ------------------------------------------------------------------------------------


def test_copy_to_the_attempt_folder_and_to_a_dest(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.bin": b"\x00\x01" * 1000, "b.bin": b"b"})
    outcome = run_group(_builtin("copy"), SUM, files, _ctx(tmp_path))
    assert outcome.value == {"files": 2, "bytes": 2001}
    assert (tmp_path / "out" / "000000-a.bin").read_bytes() == b"\x00\x01" * 1000
    assert [r["size"] for r in outcome.outputs.to_pylist()] == [2000, 1]

    dest = tmp_path / "elsewhere"
    outcome = run_group(_builtin("copy", dest=f"file://{dest}"), SUM, files, _ctx(tmp_path))
    assert (dest / "000001-b.bin").read_bytes() == b"b"
    assert outcome.outputs.column("uri").to_pylist() == [
        f"file://{dest}/000000-a.bin",
        f"file://{dest}/000001-b.bin",
    ]


def test_copy_rejects_an_unsupported_dest() -> None:
    with pytest.raises(SpecError, match="'dest'"):
        check_processor(_builtin("copy", dest="gs://bucket/x"))


def test_words_counter_matches_counter(tmp_path: Path) -> None:
    text = "alpha beta alpha gamma beta alpha\n" * 100
    files = _files(tmp_path, {"t.txt": text.encode()})
    value = run_group(_builtin("wordcount"), SUM, files, _ctx(tmp_path)).value
    assert value["words"] == dict(Counter(text.split()))


def test_csv_groupby_sum_that_overflows_fails_the_group_instead_of_null(tmp_path: Path) -> None:
    files = _files(tmp_path, {"a.csv": b"k,v\nx,1e308\n", "b.csv": b"k,v\nx,1e308\ny,1\n"})
    spec = _builtin("csv-groupby", column="k", agg="sum", value_column="v")
    with pytest.raises(ValueOutOfRangeError, match="produced inf at 'x'"):
        run_group(spec, SUM, files, _ctx(tmp_path))
