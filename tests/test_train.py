"""`train`: the split, the example columns, early stopping, resume, the saved model and its card."""

import json

import pytest
from helpers import shared_dataset, triplet
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.settings.training import TrainSettings
from hardneg.data.records import write_records
from hardneg.core.errors import HardnegError
from hardneg.training.bi_encoder import example_columns, split_by_query, train_bi_encoder

runner = CliRunner()


def write_triplets(path, count=40, positives_per_query=2, negatives=2):
    write_records(path, [triplet(q, p, negatives) for q in range(count) for p in range(positives_per_query)])
    return path


def small(**overrides) -> TrainSettings:
    settings = dict(num_negatives=2, batch_size=4, eval_steps=2, max_steps=6, max_seq_length=32, learning_rate=1e-3)
    return TrainSettings(**{**settings, **overrides})


def test_the_split_holds_out_queries_not_pairs():
    triplets = [triplet(q, p) for q in range(50) for p in range(3)]
    train, validation = split_by_query(triplets, 0.1, seed=0)
    train_queries, validation_queries = {t.query_id for t in train}, {t.query_id for t in validation}
    assert not train_queries & validation_queries
    assert len(validation_queries) == 5 and len(validation) == 15 and len(train) + len(validation) == 150
    assert split_by_query(triplets, 0.1, seed=0) == (train, validation)
    assert {t.query_id for t in split_by_query(triplets, 0.1, seed=1)[1]} != validation_queries
    with pytest.raises(HardnegError, match="at least 2 queries"):
        split_by_query([triplet(0, 0), triplet(0, 1)], 0.1, 0)


def test_short_triplets_are_padded_with_their_own_negatives_or_dropped():
    triplets = [triplet(0, negatives=3), triplet(1, negatives=1)]
    counts: dict = {}
    padded = example_columns(triplets, 3, "pad", counts)
    assert padded["negative_1"][1] == padded["negative_2"][1] == padded["negative_3"][1] == "wind unrelated note 1 0 0"
    assert list(padded) == ["anchor", "positive", "negative_1", "negative_2", "negative_3"] and counts == {"padded_short": 1}
    dropped = example_columns(triplets, 3, "drop", counts)
    assert dropped["anchor"] == ["what about solar 0"] and counts["dropped_short"] == 1
    assert list(example_columns(triplets, 0, "pad", {})) == ["anchor", "positive"]


def test_cli_trains_a_plain_transformer_with_mean_pooling_and_a_model_card(tmp_path, tiny_plain_transformer_path):
    from sentence_transformers import SentenceTransformer

    triplets = write_triplets(tmp_path / "triplets.jsonl")
    output = tmp_path / "model"
    args = ["train", "-t", str(triplets), "-o", str(output), "--base-model", str(tiny_plain_transformer_path),
            "-n", "2", "--batch-size", "4", "--eval-steps", "2", "--max-steps", "4", "--max-seq-length", "32", "-q"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    model = SentenceTransformer(str(output), device="cpu")
    assert model[1].get_config_dict()["pooling_mode"] == "mean"
    assert model.encode(["a query"]).shape == (1, 32)
    card = (output / "README.md").read_text()
    assert "## hardneg training" in card and str(triplets.resolve()) in card and "`bm25`" in card
    assert "`batch_size`: 4" in card and "`num_negatives`: 2" in card and "saved: best checkpoint" in card
    provenance = json.loads((output / "hardneg_training.json").read_text())
    assert provenance["counts"]["steps"] == 4 and provenance["counts"]["validation_queries"] == 4
    assert any("eval_loss" in entry for entry in provenance["log"]) and any("loss" in entry for entry in provenance["log"])
    assert json.loads((tmp_path / "model.manifest.json").read_text())["stage"] == "train"
    assert not (tmp_path / "model.checkpoints").exists()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "reused the model trained earlier" in again.stdout


def test_early_stopping_stops_after_patience_evaluations_without_improvement(tmp_path, tiny_model_path):
    triplets = write_triplets(tmp_path / "triplets.jsonl")
    # A learning rate far below float32 precision: the validation loss never improves.
    result = train_bi_encoder(triplets, small(base_model=str(tiny_model_path), learning_rate=1e-20, eval_steps=1,
                                              max_steps=40, patience=3), tmp_path / "model", False)  # fmt: skip
    assert result.counts["steps"] == 4 and result.counts["stopped_early"] is True
    assert result.counts["best_step"] == 1


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, tiny_model_path):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise RuntimeError("simulated crash")

    triplets = write_triplets(tmp_path / "triplets.jsonl")
    config = small(base_model=str(tiny_model_path), patience=None)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_bi_encoder(triplets, config, tmp_path / "model", False, callbacks=[Crash()])
    assert sorted(p.name for p in (tmp_path / "model.checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert not (tmp_path / "model").exists()
    result = train_bi_encoder(triplets, config, tmp_path / "model", False)
    assert result.counts["resumed_from"] == "checkpoint-4" and result.counts["steps"] == 6
    assert not result.reused and (tmp_path / "model" / "model.safetensors").exists()


def test_bad_triplet_files_get_one_line_with_file_and_line(tmp_path):
    triplets = write_triplets(tmp_path / "triplets.jsonl", count=3)
    lines = triplets.read_text().splitlines()
    record = json.loads(lines[1])
    record["negatives"] = []
    lines[1] = json.dumps(record)
    triplets.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["train", "-t", str(triplets), "-o", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert f"{triplets}:2: field 'negatives': no negatives" in result.stderr and "--skip-empty" in result.stderr
    del record["positive"]
    triplets.write_text(json.dumps(record) + "\n")
    result = runner.invoke(app, ["train", "-t", str(triplets), "-o", str(tmp_path / "m")])
    assert result.exit_code == 2 and f"{triplets}:1: field 'positive': missing" in result.stderr
    assert not (tmp_path / "m").exists()


def test_skip_empty_leaves_out_triplets_without_negatives(tmp_path, tiny_model_path):
    triplets = write_triplets(tmp_path / "triplets.jsonl", count=30)
    lines = [json.loads(line) for line in triplets.read_text().splitlines()]
    lines[3]["negatives"] = []
    triplets.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = train_bi_encoder(triplets, small(base_model=str(tiny_model_path), skip_empty=True, max_steps=1), tmp_path / "m", False)
    assert result.counts["skipped_empty"] == 1 and result.counts["triplets"] == len(lines) - 1


def test_a_file_whose_every_negative_was_filtered_out_says_so_in_one_line(tmp_path):
    """A grid's filter can drop every negative (the study's pool cross-encoder kept none of NFCorpus's
    swaps): the message names the file and what to do, not a split of 0 queries."""
    triplets = write_triplets(tmp_path / "triplets.jsonl", count=6)
    lines = [{**json.loads(line), "negatives": []} for line in triplets.read_text().splitlines()]
    triplets.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = runner.invoke(app, ["train", "-t", str(triplets), "-o", str(tmp_path / "m"), "--skip-empty"])
    assert result.exit_code == 2 and not (tmp_path / "m").exists()
    assert f"{triplets}: none of its {len(lines)} triplets has a negative left" in " ".join(result.stderr.split())


@pytest.mark.integration
def test_real_minilm_on_scifact_bm25_triplets_lowers_the_validation_loss(tmp_path):
    """The installed all-MiniLM-L6-v2, briefly, on real SciFact train pairs with BM25 negatives."""
    from hardneg.settings.data import PairsSettings
    from hardneg.settings.mining import MineSettings
    from hardneg.data.beir import load_beir
    from hardneg.mining import mine
    from hardneg.data.pairs import build_pairs

    dataset = load_beir(shared_dataset("scifact"))
    pairs = build_pairs(dataset, PairsSettings(dataset="scifact", one_per_query=True, max_pairs=320))
    mined = mine(pairs, dataset, MineSettings(dataset="scifact", num_negatives=1, range_min=10), show_progress=False)
    write_records(tmp_path / "triplets.jsonl", mined.triplets)
    config = TrainSettings(num_negatives=1, eval_steps=4, max_steps=12, max_seq_length=64, learning_rate=5e-5)
    result = train_bi_encoder(tmp_path / "triplets.jsonl", config, tmp_path / "model", False)
    counts = result.counts
    assert counts["validation_queries"] == 32 and counts["steps"] == 12
    assert counts["best_validation_loss"] < counts["start_validation_loss"]


def test_a_reused_model_keeps_its_manifest_and_is_not_hashed_again(tmp_path, tiny_model_path, monkeypatch):
    import hardneg.core.manifest as manifest
    from hardneg.stages import run_kind

    triplets = write_triplets(tmp_path / "triplets.jsonl")
    config = small(base_model=str(tiny_model_path), max_steps=2)
    first = run_kind("train", config, {"triplets": triplets}, tmp_path / "model", show_progress=False)
    written = (tmp_path / "model.manifest.json").read_text()
    assert not first.reused and json.loads(written)["stage"] == "train"
    hashed = []
    monkeypatch.setattr(manifest, "sha256_of", lambda path: hashed.append(path) or "x")
    again = run_kind("train", config, {"triplets": triplets}, tmp_path / "model", show_progress=False)
    assert again.reused and again.counts["steps"] == first.counts["steps"]
    assert (tmp_path / "model.manifest.json").read_text() == written and tmp_path / "model" not in hashed
