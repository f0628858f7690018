"""``parceler plan`` on a local folder and a listing file; bad input exits 2 with no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from parceler.cli import _register_commands, app
from parceler.manifest import read_manifest

_register_commands()
runner = CliRunner()


def _folder(tmp_path: Path, sizes: list[int]) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for i, size in enumerate(sizes):
        (folder / f"f{i:03d}.bin").write_bytes(b"x" * size)
    return folder


def test_plan_json_on_a_local_folder_writes_group_manifests(tmp_path: Path) -> None:
    folder = _folder(tmp_path, [700, 600, 500, 400, 300, 200, 100, 2500])
    out = tmp_path / "plan"
    result = runner.invoke(
        app, ["plan", str(folder), "--target-size", "1000B", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["n_files"] == 8
    assert doc["total_size"] == 5300
    assert doc["oversized"] == [(folder / "f007.bin").as_uri()]
    assert doc["n_groups"] == len(doc["groups"]) == doc["lower_bound"] == 4
    listed: list[str] = []
    for group in doc["groups"]:
        manifest = read_manifest(group["summary_uri"])
        assert manifest.summary.n_files == group["n_files"]
        assert manifest.summary.total_size == group["size"]
        assert group["size"] <= 1000 or group["n_files"] == 1
        listed += pq.read_table(manifest.summary.data_uri).column("uri").to_pylist()
    assert sorted(listed) == sorted(p.as_uri() for p in folder.iterdir())
    index = read_manifest(doc["index_uri"])
    assert index.table.column("uri").to_pylist() == [g["summary_uri"] for g in doc["groups"]]


def test_plan_table_on_a_listing_file_with_groups(tmp_path: Path) -> None:
    listing = tmp_path / "listing.csv"
    rows = "\n".join(f"s3://b/k{i},{(i + 1) * 10}" for i in range(10))
    listing.write_text(f"uri,size\n{rows}\n")
    result = runner.invoke(app, ["plan", str(listing), "--groups", "3", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "files" in result.stdout and "10" in result.stdout
    assert "no (dry run)" in result.stdout
    doc = json.loads(runner.invoke(app, ["plan", str(listing), "--groups", "3", "--json"]).stdout)
    assert doc["n_groups"] == 3
    assert sum(g["size"] for g in doc["groups"]) == 550
    assert max(g["size"] for g in doc["groups"]) - min(g["size"] for g in doc["groups"]) <= 100


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["ftp://host/x"], "ftp"),
        (["{tmp}/missing.csv"], "missing.csv"),
        (["{tmp}/bad.csv"], "size"),
        (["{tmp}/empty"], "empty"),
        (["{tmp}/ok.csv", "--target-size", "0"], "--target-size"),
        (["{tmp}/ok.csv", "--target-size", "huge"], "'huge'"),
        (["{tmp}/ok.csv", "--groups", "2", "--target-size", "1GB"], "--groups"),
    ],
)
def test_bad_input_exits_2_with_a_named_problem(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "bad.csv").write_text("uri,size\ns3://b/a,-5\n")
    (tmp_path / "ok.csv").write_text("uri,size\ns3://b/a,5\n")
    (tmp_path / "empty").mkdir()
    argv = ["plan", *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert says.lower() in result.stderr.lower()
    assert "Traceback" not in result.output


def test_plan_fill_leaves_out_a_group_holding_one_oversized_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path, [600, 500, 400, 2500])  # 2500 B is over the 1000 B target

    doc = json.loads(
        runner.invoke(app, ["plan", str(folder), "--target-size", "1000B", "--json"]).stdout
    )

    assert doc["oversized"] == [(folder / "f003.bin").as_uri()]
    assert doc["fill"]["max"] <= 1.0  # not 2.5: the oversized file's group is listed apart


def test_plan_without_out_says_why_nothing_was_written(tmp_path: Path) -> None:
    folder = _folder(tmp_path, [100, 200])

    result = runner.invoke(app, ["plan", str(folder), "--target-size", "1000B"])

    assert result.exit_code == 0, result.output
    assert "dry run" not in result.stdout
    assert "--out" in result.stdout


def test_plan_stable_packs_content_defined_groups_in_uri_order(tmp_path: Path) -> None:
    folder = _folder(tmp_path, [100] * 40)
    bfd = runner.invoke(app, ["plan", str(folder), "--target-size", "1000B", "--json"])
    stable = runner.invoke(
        app, ["plan", str(folder), "--target-size", "1000B", "--json", "--stable"]
    )
    assert bfd.exit_code == stable.exit_code == 0, stable.output
    doc = json.loads(stable.stdout)
    assert json.loads(bfd.stdout)["n_groups"] == 4  # BFD: full groups of 10
    assert doc["n_groups"] >= 4 and sum(g["n_files"] for g in doc["groups"]) == 40
    assert all(8 <= g["n_files"] <= 10 for g in doc["groups"][:-1])  # closed at >= 75%
