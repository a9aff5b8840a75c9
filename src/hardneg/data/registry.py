"""Dataset names -> local BEIR folders, downloading BEIR's public zips when a name is missing.

Look-up order for the data root: ``--data-root``, then ``$HARDNEG_DATA``, then
``../shared/data/beir`` when it exists, then ``~/.cache/hardneg/datasets``. Downloads go to the
explicit root when one is given and to the cache otherwise, so a read-only shared folder is never
written.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from hardneg.core.errors import HardnegError
from hardneg.core.io import cache_root
from hardneg.data.beir import BeirDataset, load_beir

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"

BEIR_DATASETS = (
    "msmarco",
    "trec-covid",
    "nfcorpus",
    "nq",
    "hotpotqa",
    "fiqa",
    "arguana",
    "webis-touche2020",
    "cqadupstack",
    "quora",
    "dbpedia-entity",
    "scidocs",
    "fever",
    "climate-fever",
    "scifact",
)
"""BEIR's publicly downloadable datasets (BioASQ, Signal-1M, TREC-NEWS and Robust04 are not)."""

PUBLISHED_SIZES = {
    "msmarco": 8_841_823,
    "trec-covid": 171_332,
    "nfcorpus": 3_633,
    "nq": 2_681_468,
    "hotpotqa": 5_233_329,
    "fiqa": 57_638,
    "arguana": 8_674,
    "webis-touche2020": 382_545,
    "cqadupstack": 457_199,
    "quora": 522_931,
    "dbpedia-entity": 4_635_922,
    "scidocs": 25_657,
    "fever": 5_416_568,
    "climate-fever": 5_416_593,
    "scifact": 5_183,
}
"""Corpus sizes from the BEIR paper (Thakur et al., 2021, table 1): a dry run sizes data it has not
downloaded."""
PUBLISHED_TRAIN = {"msmarco": (502_939, 532_751)}
"""(queries, positive judgments) of a train split, same source: the study's MS MARCO pairs."""

SHARED_ROOT = Path("../shared/data/beir")
CACHE_ROOT = Path("~/.cache/hardneg/datasets")


@dataclass(frozen=True)
class DataRoots:
    search: tuple[Path, ...]
    download: Path


def data_roots(data_root: str | Path | None = None) -> DataRoots:
    explicit = data_root or os.environ.get("HARDNEG_DATA")
    cache = cache_root() / "datasets"
    if explicit:
        root = Path(explicit).expanduser()
        return DataRoots(search=(root,), download=root)
    search = (SHARED_ROOT, cache) if SHARED_ROOT.is_dir() else (cache,)
    return DataRoots(search=search, download=cache)


def is_beir_folder(path: Path) -> bool:
    return (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file()


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    path: Path | None

    @property
    def status(self) -> str:
        return "local" if self.path else "downloadable"


def list_datasets(data_root: str | Path | None = None) -> list[DatasetEntry]:
    """Every folder found under the roots, then the BEIR names that would be downloaded."""
    found: dict[str, Path] = {}
    for root in data_roots(data_root).search:
        if root.is_dir():
            for child in sorted(root.iterdir()):
                if is_beir_folder(child):
                    found.setdefault(child.name, child)
    entries = [DatasetEntry(name, path) for name, path in sorted(found.items())]
    entries += [DatasetEntry(name, None) for name in BEIR_DATASETS if name not in found]
    return entries


def resolve_dataset(
    name_or_path: str | Path, data_root: str | Path | None = None, download: bool = True
) -> Path:
    """A BEIR folder for a path or a name, downloading a known BEIR name when it is missing."""
    candidate = Path(name_or_path).expanduser()
    if is_beir_folder(candidate):
        return candidate
    roots = data_roots(data_root)
    name = str(name_or_path)
    for root in roots.search:
        if is_beir_folder(root / name):
            return root / name
    if candidate.exists():
        raise HardnegError(f"{candidate}: not a BEIR folder (expected corpus.jsonl and queries.jsonl)")
    if name in BEIR_DATASETS and download:
        return download_dataset(name, roots.download)
    searched = ", ".join(str(root) for root in roots.search)
    raise HardnegError(
        f"unknown dataset {name!r}: no folder of that name under {searched}, and it is not a BEIR "
        f"name (see 'hardneg data list')"
    )


def load_dataset(name_or_path: str | Path, data_root: str | Path | None = None) -> BeirDataset:
    """The loader every command uses: resolve (maybe download), then load with clear errors."""
    return load_beir(resolve_dataset(name_or_path, data_root))


def download_dataset(
    name: str, target_root: Path, url: str | None = None, show_progress: bool = True
) -> Path:
    """Fetch and unpack a BEIR zip; the folder appears under ``target_root`` only when complete."""
    url = url or os.environ.get("HARDNEG_BEIR_URL", BEIR_URL).format(name=name)
    target = target_root / name
    target_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=target_root) as staging_dir:
        staging = Path(staging_dir)
        archive = staging / f"{name}.zip"
        _fetch(url, archive, show_progress)
        unpacked = staging / "unpacked"
        _unzip(archive, unpacked, url)
        folder = _find_beir_folder(unpacked, name)
        if folder is None:
            raise HardnegError(f"{url}: the archive holds no BEIR folder (corpus.jsonl, queries.jsonl)")
        if target.exists():  # another process finished first
            return target
        os.replace(folder, target)
    return target


def _fetch(url: str, destination: Path, show_progress: bool) -> None:
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=30.0) as response:
            if response.status_code != 200:
                raise HardnegError(f"{url}: download failed with HTTP {response.status_code}")
            total = int(response.headers.get("content-length", 0)) or None
            columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
            with Progress(*columns, disable=not show_progress) as progress, destination.open("wb") as out:
                task = progress.add_task(destination.name, total=total)
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    progress.update(task, advance=len(chunk))
    except httpx.HTTPError as exc:
        raise HardnegError(
            f"{url}: download failed ({exc}); without internet, put the BEIR folder under a data "
            f"root (--data-root or HARDNEG_DATA)"
        ) from exc


def _unzip(archive: Path, destination: Path, url: str) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            root = destination.resolve()
            for member in bundle.namelist():
                if not (destination / member).resolve().is_relative_to(root):
                    raise HardnegError(f"{url}: archive member {member!r} escapes its folder")
            bundle.extractall(destination)
    except zipfile.BadZipFile as exc:
        raise HardnegError(f"{url}: not a valid zip archive ({exc})") from exc


def _find_beir_folder(unpacked: Path, name: str) -> Path | None:
    for candidate in (unpacked / name, unpacked):
        if is_beir_folder(candidate):
            return candidate
    folders = [child for child in unpacked.iterdir() if child.is_dir()]
    if len(folders) == 1 and (is_beir_folder(folders[0]) or folders[0].name == name):
        return folders[0]
    return None
