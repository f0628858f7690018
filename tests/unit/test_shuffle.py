"""The shuffle: stable partition keys, one data object and one index per attempt, pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from parceler import storage
from parceler.errors import ProcessorError, SourceError
from parceler.models import DATA_FILE_SCHEMA
from parceler.processors import GroupContext, run_group
from parceler.processors.context import file_refs
from parceler.shuffle import (
    DATA_NAME,
    INDEX_NAME,
    ShuffleWriter,
    parse_piece,
    partition_of,
    partition_sizes,
    piece_uri,
    pieces,
)
from parceler.spec import ProcessorSpec


def test_a_hashed_key_has_one_documented_partition() -> None:
    # BLAKE2b-64 of the UTF-8 key, big-endian, mod n: fixed here so a change is noticed
    # (a changed hash would send an incremental run's keys elsewhere).
    import hashlib

    digest = int.from_bytes(hashlib.blake2b(b"passengers-1", digest_size=8).digest(), "big")
    assert partition_of("passengers-1", 16) == digest % 16
    assert {partition_of(f"key-{i}", 7) for i in range(200)} == set(range(7))


def test_a_numeric_prefix_places_a_key_and_must_fit() -> None:
    assert partition_of("003_passengers", 16) == 3
    assert partition_of("0_x", 1) == 0
    with pytest.raises(ProcessorError, match=r"partition 16.*16 partitions"):
        partition_of("016_x", 16)
    with pytest.raises(ProcessorError, match="empty partition key"):
        partition_of("", 4)


def _write(tmp_path: Path, emits: list[tuple[str, bytes]], partitions: int = 4) -> dict:
    writer = ShuffleWriter(partitions)
    for key, data in emits:
        writer.emit(key, data)
    written = writer.write(str(tmp_path))
    assert written.data_uri == str(tmp_path / DATA_NAME)
    return json.loads((tmp_path / INDEX_NAME).read_text())


def test_one_data_object_holds_each_partition_contiguously_in_emit_order(
    tmp_path: Path,
) -> None:
    index = _write(
        tmp_path,
        [("2_b", b"b1,"), ("0_a", b"a1,"), ("2_b", b"b2,"), ("0_a", b"a2,"), ("3_c", b"")],
    )
    data = (tmp_path / DATA_NAME).read_bytes()
    ranges = {p: (start, length, emits) for p, start, length, emits in index["ranges"]}
    assert data == b"a1,a2,b1,b2,"
    assert ranges == {0: (0, 6, 2), 2: (6, 6, 2)}  # an empty piece adds no range
    assert sorted(p.name for p in tmp_path.iterdir()) == [DATA_NAME, INDEX_NAME]


def test_spilled_buffers_keep_each_partitions_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("parceler.shuffle.FLUSH_BYTES", 10)  # spill after every few emits
    emits = [(f"{i % 3}_k", f"{i:04d}|".encode()) for i in range(60)]
    index = _write(tmp_path, emits, partitions=3)
    data = (tmp_path / DATA_NAME).read_bytes()
    for p, start, length, _ in index["ranges"]:
        expected = b"".join(d for k, d in emits if k.startswith(f"{p}_"))
        assert data[start : start + length] == expected


def test_pieces_of_a_result_are_ranges_that_open_as_their_bytes(tmp_path: Path) -> None:
    folders = [tmp_path / "m0", tmp_path / "m1"]
    for n, folder in enumerate(folders):
        _write(folder, [("1_x", f"m{n}-one|".encode()), ("0_y", f"m{n}-zero|".encode())], 2)
    listed = pa.table(
        {
            "uri": [str(f / name) for f in folders for name in (DATA_NAME, INDEX_NAME)],
            "size": [1, 1, 1, 1],
            "n_record": [None] * 4,
            "etag": [None] * 4,
        },
        schema=DATA_FILE_SCHEMA,
    )
    found = pieces(listed, "source test")
    assert found.n_mappers == 2 and found.partitions == 2
    assert sorted(found.partition.tolist()) == [0, 0, 1, 1]
    refs = file_refs(found.table)
    texts = {(p, ref.read_bytes()) for p, ref in zip(found.partition.tolist(), refs, strict=True)}
    assert texts == {(0, b"m0-zero|"), (0, b"m1-zero|"), (1, b"m0-one|"), (1, b"m1-one|")}
    assert found.sizes().tolist() == [16, 14]


def test_a_source_without_a_shuffle_index_is_refused() -> None:
    listed = pa.table(
        {"uri": ["s3://b/a.csv"], "size": [1], "n_record": [None], "etag": [None]},
        schema=DATA_FILE_SCHEMA,
    )
    with pytest.raises(SourceError, match=r"no shuffle index.*map_to_n"):
        pieces(listed, "source s3://b/result.json")


def test_a_piece_uri_round_trips_and_other_uris_are_not_pieces() -> None:
    uri = piece_uri("s3://b/jobs/j/shuffle.data", 7, 100, 25)
    piece = parse_piece(uri)
    assert piece is not None
    assert (piece.uri, piece.partition, piece.start, piece.length) == (
        "s3://b/jobs/j/shuffle.data", 7, 100, 25,
    )  # fmt: skip
    assert parse_piece("s3://b/a#b.csv") is None


def test_partition_sizes_name_partitions_over_four_times_the_median() -> None:
    sizes = partition_sizes(np.array([10, 0, 12, 11, 100, 9]))
    assert (sizes.min, sizes.median, sizes.max, sizes.n_empty) == (9, 11, 100, 1)
    assert sizes.skewed == [4]


def test_a_map_to_n_group_writes_one_object_and_one_index_whatever_the_keys(
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"".join(f"k{i}\n".encode() for i in range(500)))
    files = pa.table(
        {"uri": [str(source)], "size": [source.stat().st_size], "n_record": [None],
         "etag": [None]},
        schema=DATA_FILE_SCHEMA,
    )  # fmt: skip
    ctx = GroupContext("job", 0, 1, str(tmp_path / "out"))
    processor = ProcessorSpec(kind="shell", command="awk '{ print > $1; print $1 }' | sort -u")
    run = run_group(processor, None, files, ctx, kind="map_to_n", partitions=16)
    written = sorted(Path(uri).name for uri in run.outputs.column("uri").to_pylist())
    assert written == [DATA_NAME, INDEX_NAME]
    index = json.loads((tmp_path / "out" / INDEX_NAME).read_text())
    assert sum(length for _, _, length, _ in index["ranges"]) == source.stat().st_size
    assert sum(emits for *_, emits in index["ranges"]) == 500  # one piece per key


def test_emit_outside_a_map_to_n_job_says_so(tmp_path: Path) -> None:
    ctx = GroupContext("job", 0, 1, str(tmp_path))
    with pytest.raises(ProcessorError, match="not a map_to_n job"):
        ctx.emit("k", b"x")


def test_a_shell_map_to_n_name_outside_its_folder_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"x\n")
    files = pa.table(
        {"uri": [str(source)], "size": [2], "n_record": [None], "etag": [None]},
        schema=DATA_FILE_SCHEMA,
    )
    ctx = GroupContext("job", 0, 1, str(tmp_path / "out"))
    processor = ProcessorSpec(kind="shell", command="echo ../../etc/passwd")
    with pytest.raises(ProcessorError, match="not a file it wrote"):
        run_group(processor, None, files, ctx, kind="map_to_n", partitions=2)
    assert not storage.exists(str(tmp_path / "out" / DATA_NAME))


def test_the_pipeline_summary_names_a_partition_over_four_times_the_median() -> None:
    from parceler.cli.pipeline_run import partitions_text

    sizes = partition_sizes(np.array([100, 120, 110, 2_000])).to_json()
    text = partitions_text(sizes)
    assert text.startswith("100/115/2,000 B (min/median/max)")
    assert text.endswith("over 4x the median: 3")
    assert partitions_text(partition_sizes(np.array([5, 6, 7])).to_json()).endswith(
        "(min/median/max)"
    )
