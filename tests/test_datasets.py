"""The emoji data set helper: selection from emoji.json, tarball reading, clear errors without npm."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tools import datasets
from tools.datasets import DatasetUnavailable, emoji_faces

EMOJI = [
    {"image": "1f600.png", "category": "Smileys & Emotion", "subcategory": "face-smiling", "has_img_google": True},
    {"image": "1f63a.png", "category": "Smileys & Emotion", "subcategory": "cat-face", "has_img_google": True},
    {"image": "1f970.png", "category": "Smileys & Emotion", "subcategory": "face-affection", "has_img_google": False},
    {"image": "1f1eb-1f1f7.png", "category": "Flags", "subcategory": "country-flag", "has_img_google": True},
    {"image": "1f44d.png", "category": "People & Body", "subcategory": "hand-fingers-closed", "has_img_google": True},
]


def fake_pack(tmp: Path) -> Path:
    """A tarball laid out like the npm package, with two evil members that must not be written."""
    path = tmp / "emoji-datasource-google-16.0.0.tgz"
    with tarfile.open(path, "w:gz") as tar:
        files = {"package/emoji.json": json.dumps(EMOJI).encode(), "../escape.png": b"evil"}
        files.update({f"package/img/google/64/{e['image']}": b"\x89PNG fake " + e["image"].encode() for e in EMOJI})
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_selects_faces_and_flags(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(datasets, "_npm_pack", fake_pack)
    faces = emoji_faces(tmp_path / "faces")
    assert sorted(p.name for p in faces.iterdir()) == ["1f600.png", "CREDITS.txt"]
    assert "Apache License, Version 2.0" in (faces / "CREDITS.txt").read_text()
    flags = emoji_faces(tmp_path / "flags", "flags")
    assert sorted(p.name for p in flags.glob("*.png")) == ["1f1eb-1f1f7.png"]
    assert not (tmp_path / "escape.png").exists() and not (tmp_path.parent / "escape.png").exists()
    with pytest.raises(ValueError, match="Unknown emoji set"):
        emoji_faces(tmp_path / "x", "animals")


def test_clear_errors_without_npm(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(datasets.shutil, "which", lambda name: None)
    with pytest.raises(DatasetUnavailable, match="npm is not installed"):
        emoji_faces(tmp_path / "faces")
    monkeypatch.setattr(datasets.shutil, "which", lambda name: "/usr/bin/npm")
    failed = subprocess.CompletedProcess([], 1, "", "npm ERR! network request failed, reason: getaddrinfo ENOTFOUND")
    monkeypatch.setattr(datasets.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(DatasetUnavailable, match="offline") as err:
        emoji_faces(tmp_path / "faces")
    assert "ENOTFOUND" in str(err.value)
    assert not (tmp_path / "faces").exists()
