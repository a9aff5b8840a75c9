"""Manifests hash their inputs; a stage output's hash is taken from its own manifest."""

import os

from hardneg.settings.data import PairsSettings
from hardneg.core.manifest import input_sha256, sha256_of, write_manifest


def test_an_input_with_a_manifest_is_not_hashed_again_unless_it_changed(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"x" * 1000)
    write_manifest(model, "train", PairsSettings(dataset="d"), {}, {}, {})
    import hardneg.core.manifest as manifest

    calls = []
    monkeypatch.setattr(manifest, "sha256_of", lambda path: calls.append(path) or sha256_of(path))
    assert input_sha256(model) == sha256_of(model) and calls == []  # read from the manifest
    later = os.stat(model / "weights.bin").st_mtime + 10
    (model / "weights.bin").write_bytes(b"y" * 1000)
    os.utime(model / "weights.bin", (later, later))  # a file edited after the manifest: hash again
    assert input_sha256(model) == sha256_of(model) and calls == [model]
    plain = tmp_path / "pairs.jsonl"
    plain.write_text("{}\n")
    assert input_sha256(plain) == sha256_of(plain)
