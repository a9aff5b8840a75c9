"""What a stage's key holds beyond its settings: the text of a built-in prompt, the version of the
swap rules, and the content of a model a scorer names by its path."""

from __future__ import annotations

from hardneg.experiment.keys import referenced_files
from hardneg.generation import prompts
from hardneg.generation.parse import SWAP_RULES
from hardneg.settings.combine import CombineSettings
from hardneg.settings.llm import GenerateSettings
from hardneg.stages.negatives import Combine, Generate


def test_a_built_in_prompt_s_text_and_the_swap_rules_are_in_the_key(monkeypatch):
    plain = Generate().key_settings(GenerateSettings())
    swap = Generate().key_settings(GenerateSettings(mode="swap"))
    # today's prompts leave the key as it was (finished runs stay reused); the swap rules changed
    assert "template_sha" not in plain and "swap_rules" not in plain
    assert swap == {"mode": "swap", "template": "swap", "swap_rules": SWAP_RULES} and SWAP_RULES > 1
    # a new hardneg with an edited built-in prompt: new negatives, not the old text's
    original = prompts.load_template
    edited = lambda name, *args: prompts.PromptTemplate(name, original(name, *args).text + " Be brief.")  # noqa: E731
    monkeypatch.setattr(prompts, "load_template", edited)
    assert len(Generate().key_settings(GenerateSettings())["template_sha"]) == 16
    assert "judge_template_sha" in Combine().key_settings(CombineSettings(judge={"model": "smollm2-135m"}))


def test_every_built_in_prompt_has_its_keyed_hash():
    """A new built-in prompt is recorded in KEYED_TEMPLATES, or its generators' keys would carry its
    hash from the start (harmless) and change when it is recorded (not)."""
    from hardneg.generation.prompts import BUILT_IN, JUDGE_BUILT_IN
    from hardneg.stages.negatives import KEYED_TEMPLATES

    assert set(KEYED_TEMPLATES) == set(BUILT_IN + JUDGE_BUILT_IN)


def test_a_template_file_is_keyed_by_its_content_not_by_name(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("Write $num_negatives passages for $query.")
    settings = Generate().key_settings(GenerateSettings(template=str(path)))
    assert "template_sha" not in settings and str(path) in referenced_files(settings)


def test_a_scorer_s_model_path_is_hashed_with_its_kind_prefix(tmp_path):
    model = tmp_path / "ce"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"one")
    spec = f"cross-encoder:{model}"
    before = referenced_files({"filters": {"scorer": spec}})
    (model / "weights.bin").write_bytes(b"two")  # retrained in place
    after = referenced_files({"filters": {"scorer": spec}})
    assert spec in before and before[spec] != after[spec]
    assert referenced_files({"scorer": "dense:minilm-l6"}) == {}  # an alias is not a file


def test_a_source_s_cross_encoder_is_named_as_one_and_only_where_it_is_wired():
    import pytest
    from pydantic import ValidationError

    from hardneg.settings.mining import MineSettings

    with pytest.raises(ValidationError, match="'cross-encoder:@source:NAME'"):
        CombineSettings(score_with="dense:@source:ce")  # it would load a cross-encoder as a bi-encoder
    with pytest.raises(ValidationError, match="a grid source's cross-encoder filters in combine"):
        MineSettings(filters={"scorer": "cross-encoder:@source:ce", "relative_margin": 0.05})
    assert CombineSettings(score_with="cross-encoder:@source:ce").score_with == "cross-encoder:@source:ce"
