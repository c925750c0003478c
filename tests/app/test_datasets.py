"""The public data sets: the manifest matches the shared copy, ``verify`` names every damaged file,
``fetch`` fills a folder and keeps only bytes that match. Nothing downloads here: the injected
downloaders copy the shared files (or write wrong bytes), a real file operation."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from recops.app.datasets import (
    MANIFEST,
    ML_ZIP,
    DataFile,
    Downloader,
    ProgressHook,
    UnknownDataSet,
    fetch,
    select,
    sha256_of,
    verify,
)

DIGINETICA = "diginetica_sample/sample_train-item-views.csv"
FAKE_USER_LINES = b"0\t50\t5\t883603013\n0\t172\t5\t883603013\n0\t133\t1\t883603013\t\n"
"""The three lines of the fake user 0 at the top of the mirror's ``ml-100k/u.data``."""
MIRROR_U_DATA_BLOB = "d6716bf2a742ed3345d14a2069c71073c6e868d7"
"""``git ls-tree`` blob id of ``ml-100k/u.data`` at the mirror's pinned commit (1,979,227 bytes)."""


def _ref(path: str) -> DataFile:
    return next(ref for ds in MANIFEST for ref in ds.files if ref.path == path)


@pytest.fixture(scope="module")
def shared(dataset) -> Path:
    """The shared data folder with all four data sets (fails in CI, skips elsewhere if one is missing)."""
    folders = [dataset(ds.name) for ds in MANIFEST]
    return folders[0].parent


@pytest.fixture
def quiet() -> Console:
    """A console writing into memory (the progress display lands there)."""
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def local_downloader(shared: Path) -> Callable[..., Downloader]:
    """``local_downloader(serve=None, calls=None)``: a downloader that copies local files. By
    default every plain URL of the manifest serves its shared file (the mirrors and the SR-GNN
    repository); ``serve`` adds or replaces URLs; any other URL fails like an unreachable host.
    Each requested URL is appended to ``calls``."""

    def make(serve: dict[str, Path] | None = None, calls: list[str] | None = None) -> Downloader:
        files = {
            source.url: shared / ref.path
            for ds in MANIFEST
            for ref in ds.files
            for source in ref.sources
            if source.member is None
        }
        files.update(serve or {})

        def download(url: str, dest: Path, hook: ProgressHook) -> None:
            if calls is not None:
                calls.append(url)
            if url not in files:
                raise ConnectionError(f"no local copy of {url}")
            shutil.copyfile(files[url], dest)
            hook(dest.stat().st_size, dest.stat().st_size)

        return download

    return make


def test_manifest_is_the_shared_copy(shared: Path) -> None:
    assert verify(shared) == []
    data_files = {
        p.relative_to(shared).as_posix() for p in shared.rglob("*") if p.is_file() and p.name != "SOURCE.md"
    }
    assert data_files == {ref.path for ds in MANIFEST for ref in ds.files}, "a data file is not in the manifest"
    assert [ds.name for ds in select(["movielens_100k"])] == ["movielens_100k"]
    with pytest.raises(UnknownDataSet, match="nope"):
        select(["nope"])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


@pytest.mark.parametrize(
    ("damage", "kind", "says"),
    [
        (_flip_byte, "checksum", "expected " + _ref(DIGINETICA).sha256),
        (_truncate, "size", "395,353 bytes, expected 395,354"),
        (Path.unlink, "missing", "missing (expected 395,354 bytes"),
    ],
)
def test_verify_names_a_damaged_file(shared: Path, tmp_path: Path, damage, kind: str, says: str) -> None:
    copy = tmp_path / DIGINETICA
    copy.parent.mkdir(parents=True)
    shutil.copyfile(shared / DIGINETICA, copy)
    assert verify(tmp_path, ["diginetica_sample"]) == []

    damage(copy)
    problems = verify(tmp_path, ["diginetica_sample"])
    assert [(p.path, p.kind) for p in problems] == [(DIGINETICA, kind)]
    assert problems[0].message.startswith(DIGINETICA + ": ")
    assert says in problems[0].message
    if kind == "checksum":
        assert sha256_of(copy) in problems[0].message


def test_fetch_fills_an_empty_folder(tmp_path: Path, local_downloader, quiet: Console) -> None:
    target, calls = tmp_path / "data", []
    results = fetch(target, downloader=local_downloader(calls=calls), console=quiet)

    assert verify(target) == []
    assert {r.status for r in results} == {"fetched"}
    assert [r.path for r in results] == [ref.path for ds in MANIFEST for ref in ds.files]
    movielens = [r for r in results if r.path.startswith("movielens_100k/")]
    assert all(r.source.startswith("mirror https://raw.githubusercontent.com/tule2236/") for r in movielens)
    assert calls.count(ML_ZIP) == 1, "a failing archive is tried once per run, then its mirror"
    assert not list(target.glob(".fetch-*")), "the staging folder is removed"
    assert "sample_train-item-views.csv" in quiet.file.getvalue()


def test_fetch_takes_movielens_from_the_publisher_archive(
    shared: Path, tmp_path: Path, local_downloader, quiet: Console
) -> None:
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for ref in select(["movielens_100k"])[0].files:
            zf.write(shared / ref.path, "ml-100k/" + Path(ref.path).name)
    calls: list[str] = []
    results = fetch(
        tmp_path / "data", ["movielens_100k"], local_downloader({ML_ZIP: archive}, calls), console=quiet
    )

    assert verify(tmp_path / "data", ["movielens_100k"]) == []
    assert all(r.source == f"publisher {ML_ZIP} (member ml-100k/{Path(r.path).name})" for r in results)
    assert calls == [ML_ZIP]


def test_fetch_converts_the_mirrors_u_data(shared: Path, tmp_path: Path, local_downloader, quiet: Console) -> None:
    mirror_copy = tmp_path / "mirror-u.data"
    mirror_copy.write_bytes(FAKE_USER_LINES + (shared / "movielens_100k/u.data").read_bytes())
    data = mirror_copy.read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == MIRROR_U_DATA_BLOB
    mirror_url = _ref("movielens_100k/u.data").sources[1].url

    results = fetch(tmp_path / "data", ["movielens_100k"], local_downloader({mirror_url: mirror_copy}), console=quiet)

    assert verify(tmp_path / "data", ["movielens_100k"]) == []
    u_data = next(r for r in results if r.path == "movielens_100k/u.data")
    assert (u_data.status, u_data.source) == ("fetched", f"mirror {mirror_url}, then drop_user_0")


def _wrong_bytes(dest: Path, url: str) -> None:
    """Bytes of the right size (a checksum failure) for a plain URL; garbage for an archive."""
    sizes = {s.url: ref.size for ds in MANIFEST for ref in ds.files for s in ref.sources if s.member is None}
    dest.write_bytes(b"x" * sizes.get(url, 10))


def test_fetch_refuses_wrong_bytes_and_keeps_nothing(tmp_path: Path, quiet: Console) -> None:
    target = tmp_path / "data"
    results = fetch(target, downloader=lambda url, dest, hook: _wrong_bytes(dest, url), console=quiet)

    assert {r.status for r in results} == {"failed"}
    assert [p for p in target.rglob("*")] == [], "no file, no folder, no staging left"
    digi = next(r for r in results if r.path == DIGINETICA)
    assert "SHA-256" in digi.detail and _ref(DIGINETICA).sha256 in digi.detail
    u_data = next(r for r in results if r.path == "movielens_100k/u.data")
    assert "BadZipFile" in u_data.detail  # the archive refused, then the mirror's bytes:
    assert "drop_user_0: movielens_100k/u.data: SHA-256" in u_data.detail


def test_fetch_never_replaces_a_good_file_and_only_with_good_bytes(
    shared: Path, tmp_path: Path, quiet: Console
) -> None:
    good, bad = tmp_path / DIGINETICA, tmp_path / "movielens_100k/u.info"
    for path in (good, bad):
        path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared / DIGINETICA, good)
    bad.write_bytes(b"damaged\n")
    before = good.stat()
    calls: list[str] = []

    def wrong(url: str, dest: Path, hook: ProgressHook) -> None:
        calls.append(url)
        _wrong_bytes(dest, url)

    results = fetch(tmp_path, ["diginetica_sample", "movielens_100k"], wrong, console=quiet)

    assert results[-1].path == DIGINETICA and results[-1].status == "present"
    assert (good.stat().st_ino, good.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not any(DIGINETICA.rsplit("/", 1)[-1] in url for url in calls)
    assert bad.read_bytes() == b"damaged\n", "a damaged file is replaced only by verified bytes"


def test_cli_verify_json(shared: Path, tmp_path: Path, cli, parse_json) -> None:
    home = tmp_path / "home"
    ok = cli(home, "data", "verify", "--json", extra_env={"RECOPS_DATA_DIR": str(shared)})
    assert parse_json(ok.stdout) == {"data_dir": str(shared), "ok": True, "files": 10, "problems": []}

    damaged = tmp_path / "data"
    (damaged / DIGINETICA).parent.mkdir(parents=True)
    shutil.copyfile(shared / DIGINETICA, damaged / DIGINETICA)
    _flip_byte(damaged / DIGINETICA)
    proc = cli(home, "data", "verify", "--json", extra_env={"RECOPS_DATA_DIR": str(damaged)}, check=False)
    report = parse_json(proc.stdout)
    assert proc.returncode == 1 and report["ok"] is False and report["files"] == 10
    kinds = {p["path"]: p["kind"] for p in report["problems"]}
    assert kinds.pop(DIGINETICA) == "checksum"
    assert set(kinds.values()) == {"missing"} and len(kinds) == 9
