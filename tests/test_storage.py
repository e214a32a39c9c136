"""The one atomic writer: whole files or nothing, staged folders, URIs resolved by pyarrow."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pyarrow.fs import S3FileSystem

from harness import ArgumentError
from harness._storage import (
    Location,
    atomic_write,
    copy_file,
    filesystem,
    staged_dir,
    storage_env,
    write_text,
)


def test_write_replaces_the_target_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a" / "b.txt"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.txt"]


def test_a_failing_writer_keeps_the_previous_version(tmp_path):
    target = tmp_path / "row.parquet"
    write_text(target, "old")

    def half_then_crash(stream):
        stream.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["row.parquet"]


def test_copy_and_remove(tmp_path):
    source = tmp_path / "m.keras"
    source.write_bytes(b"x" * 3_000_000)
    copy_file(source, tmp_path / "models" / "m.keras")
    assert (tmp_path / "models" / "m.keras").read_bytes() == source.read_bytes()
    Location.of(tmp_path / "models" / "m.keras").delete()
    Location.of(tmp_path / "models" / "m.keras").delete()  # already gone: no error
    assert not (tmp_path / "models" / "m.keras").exists()


def test_staged_dir_appears_only_on_success(tmp_path):
    with staged_dir(tmp_path / "out") as folder:
        (folder / "card.json").write_text("{}")
        assert not (tmp_path / "out").exists()
    assert (tmp_path / "out" / "card.json").is_file()
    with pytest.raises(RuntimeError), staged_dir(tmp_path / "bad") as folder:
        (folder / "half").write_text("x")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_filesystem_resolves_paths_and_uris(tmp_path, monkeypatch):
    fs, path = filesystem("relative/x")
    assert fs.type_name == "local" and Path(path).is_absolute()
    fs, path = filesystem(f"file://{tmp_path}/x")
    assert fs.type_name == "local" and path == f"{tmp_path}/x"


def test_an_unknown_uri_scheme_is_an_argument_error_naming_results():
    with pytest.raises(ArgumentError, match=r"`results` must be a local folder or a filesystem URI"):
        Location.of("nosuch://bucket/run")


def test_locations_join_list_read_and_delete_the_same_way_on_s3_and_on_disk(tmp_path, s3):
    for root in (Location.of(tmp_path / "r"), Location.of(f"s3://{s3.bucket()}/r")):
        write_text(root / "leaderboard" / "s" / "a.parquet", "a")
        write_text(root / "leaderboard" / "s" / "b.parquet", "b")
        write_text(root / "leaderboard" / "t" / "c.parquet", "c")
        board = root / "leaderboard"
        assert [f.name for f in board.folders()] == ["s", "t"]
        assert [f.uri for f in (board / "s").files(".parquet")] == [
            f"{root.uri}/leaderboard/s/a.parquet", f"{root.uri}/leaderboard/s/b.parquet"
        ]  # fmt: skip
        first = (board / "s").files()[0]
        assert first.read_text() == "a" and first.stamp() is not None
        with first.as_local_file() as local:
            assert local.read_text() == "a"
        first.delete()
        assert first.stamp() is None and [f.name for f in (board / "s").files()] == ["b.parquet"]
        assert (root / "absent").files() == [] and not (root / "absent").is_dir()
    assert not Path("s3:").exists()  # a URI never becomes a local folder


def test_a_rename_is_made_durable_by_syncing_its_folder(tmp_path, monkeypatch):
    synced: list[bool] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_text(tmp_path / "leaderboard" / "s" / "t.parquet", "row")
    assert synced == [False, True]  # the file's bytes, then the folder holding the new name
    with staged_dir(tmp_path / "export"):
        pass
    assert synced[-1] is True


@pytest.mark.parametrize(
    "uri", ["s3://AKIDEXAMPLE:sentinel-secret@bucket/run", "s3://sentinel-secret@bucket/r"]
)
def test_a_uri_carrying_credentials_is_refused_without_echoing_them(uri):
    with pytest.raises(ArgumentError, match="must not carry credentials") as refused:
        Location.of(uri)
    assert "sentinel-secret" not in str(refused.value) and "***@bucket" in str(refused.value)


def test_only_non_secret_settings_of_an_object_store_reach_ray(tmp_path, monkeypatch):
    """Ray writes its runtime environment into logs every user of the cluster can read."""
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY",
                 "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_STORAGE_SAS_TOKEN", "GCS_PASSWORD"):  # fmt: skip
        monkeypatch.setenv(name, "sentinel-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    store = Location("s3://bucket/run", S3FileSystem(anonymous=True), "bucket/run")  # never opened
    forwarded = storage_env(store)
    assert forwarded["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert forwarded["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "sentinel-secret" not in forwarded.values()
    assert storage_env(Location.of(tmp_path)) == {}  # local results: nothing to forward
