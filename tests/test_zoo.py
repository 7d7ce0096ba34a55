"""gan.explorer.zoo: resolving, loading once, uploads (zip safety, no pickles, strict keys), the Hub offline."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from gan.explorer import zoo
from gan.explorer.latent import DirectionConfig
from gan.explorer.model import Generator, ModelLoadError

SMALL = DirectionConfig(n_samples=128, k=4)


@pytest.fixture
def model_folder(tmp_path, tiny_config):
    folder = tmp_path / "saved"
    Generator(tiny_config).save_pretrained(folder)
    return folder


def make_zip(path, entries: dict[str, bytes], symlink: str | None = None):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return path


def model_entries(folder, prefix=""):
    return {prefix + n: (folder / n).read_bytes() for n in ("config.json", "model.safetensors")}


def test_upload_zip_loads_and_computes_directions_once(tmp_path, model_folder):
    upload = make_zip(tmp_path / "mine.zip", model_entries(model_folder, "mine/"))
    folder = zoo.unpack_upload([upload], tmp_path / "session" / "mine")
    loaded = zoo.load(folder, "cpu", SMALL)
    assert (folder / zoo.DIRECTIONS_FILE).is_file() and loaded.directions.k == SMALL.k
    assert zoo.load(folder, "cpu", SMALL) is loaded  # cached by (folder, device)


def test_upload_of_loose_files(tmp_path, model_folder):
    files = [model_folder / "config.json", model_folder / "model.safetensors"]
    folder = zoo.unpack_upload(files, tmp_path / "loose")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "G.pth", "last.ckpt", "model.pkl"])
def test_pickles_in_a_zip_are_refused(tmp_path, model_folder, name):
    upload = make_zip(tmp_path / "bad.zip", {**model_entries(model_folder), name: b"\x80\x04pickle"})
    with pytest.raises(ModelLoadError, match="pickled weights are refused"):
        zoo.unpack_upload([upload], tmp_path / "out")


def test_loose_pickles_are_refused(tmp_path, tiny_config):
    weights = tmp_path / "G.pt"
    torch.save(Generator(tiny_config).state_dict(), weights)
    with pytest.raises(ModelLoadError, match="pickled"):
        zoo.unpack_upload([weights], tmp_path / "out")


@pytest.mark.parametrize("evil", ["../evil/config.json", "/abs/model.safetensors", "a/../../x.json", "C:/x.json"])
def test_zip_traversal_is_refused(tmp_path, model_folder, evil):
    upload = make_zip(tmp_path / "evil.zip", {**model_entries(model_folder), evil: b"{}"})
    with pytest.raises(ModelLoadError, match="outside the folder"):
        zoo.unpack_upload([upload], tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_zip_symlink_is_refused(tmp_path, model_folder):
    upload = make_zip(tmp_path / "link.zip", model_entries(model_folder), symlink="README.md")
    with pytest.raises(ModelLoadError, match="symbolic link"):
        zoo.unpack_upload([upload], tmp_path / "out")


def test_incomplete_or_mismatched_uploads(tmp_path, model_folder):
    only_config = make_zip(tmp_path / "half.zip", {"config.json": (model_folder / "config.json").read_bytes()})
    with pytest.raises(ModelLoadError, match=r"lacks model\.safetensors"):
        zoo.unpack_upload([only_config], tmp_path / "half")
    config = json.loads((model_folder / "config.json").read_text())
    config["nz"] = 9  # strict key/shape check: weights no longer match
    entries = {**model_entries(model_folder), "config.json": json.dumps(config).encode()}
    upload = make_zip(tmp_path / "wrong.zip", entries)
    with pytest.raises(ModelLoadError, match="do not match"):
        zoo.import_upload([upload], tmp_path / "wrong")
    assert not (tmp_path / "wrong").exists()  # a failed upload leaves nothing behind


def test_resolve_knows_pretrained_session_and_unknown(tmp_path):
    assert "dcgan-faces-64" in zoo.pretrained_ids()
    assert zoo.resolve("upload:x", {"upload:x": tmp_path}) == tmp_path
    with pytest.raises(zoo.UnknownModel, match="Unknown model"):
        zoo.resolve("nope", {})


def test_hub_offline_and_bad_ids_give_clear_messages():
    with pytest.raises(zoo.HubUnavailable, match="user/name"):
        zoo.download_from_hub("not a repo id")
    with pytest.raises(zoo.HubUnavailable, match="offline"):
        zoo.download_from_hub("someone/some-dcgan")  # conftest sets HF_HUB_OFFLINE=1


def test_directions_go_to_the_cache_for_hub_folders(tmp_path, tiny_config, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    own = tmp_path / "own"
    Generator(tiny_config).save_pretrained(own)
    assert zoo.directions_path(own) == own / zoo.DIRECTIONS_FILE
    snapshot = tmp_path / "hub" / "models--u--m" / "snapshots" / "abc"
    Generator(tiny_config).save_pretrained(snapshot)
    path = zoo.directions_path(snapshot)  # never write into the Hub's cache
    assert path.parent == tmp_path / "cache" / "directions" and path.suffix == ".safetensors"
    onnx_path = zoo.derived_path(snapshot, zoo.ONNX_FILE)  # the page's export follows the same rule
    assert onnx_path.parent == tmp_path / "cache" / "generator-fp16" and onnx_path.stem == path.stem
    assert zoo.derived_path(own, zoo.ONNX_FILE) == own / zoo.ONNX_FILE
