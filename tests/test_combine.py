"""`combine`: strategies, presets, pair matching, de-duplication, filters, caps, errors."""

import json
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.combining.combine import combine, combine_files, preset_config
from hardneg.settings.combine import CombineSettings
from hardneg.settings.mining import FilterSettings
from hardneg.data.records import Negative, Triplet, read_triplets, write_records
from hardneg.core.errors import HardnegError
from hardneg.combining.filtering import filter_triplets

runner = CliRunner()


def triplet(q: int, source: str, count: int = 3, prefix: str = "") -> Triplet:
    negatives = [Negative(text=f"{prefix or source} passage {q} {i}", source=source) for i in range(count)]
    return Triplet(query_id=f"q{q}", query=f"query {q}", positive_id=f"d{q}", positive=f"positive {q}",
                   negatives=negatives)  # fmt: skip


def texts(t: Triplet) -> list[str]:
    return [n.text for n in t.negatives]


BM25 = [triplet(q, "bm25") for q in range(3)]
LLM_A = [triplet(q, "llm:a") for q in range(3)]
LLM_B = [triplet(q, "llm:b", 2) for q in range(3)]


def test_concat_keeps_every_negative_in_input_order():
    result = combine([BM25, LLM_A], CombineSettings())
    assert [t.query_id for t in result.triplets] == ["q0", "q1", "q2"]
    assert texts(result.triplets[0]) == texts(BM25[0]) + texts(LLM_A[0])


def test_per_source_takes_the_first_k_of_each_source():
    result = combine([BM25, LLM_A, LLM_B], CombineSettings(strategy="per-source", per_source=1))
    assert texts(result.triplets[1]) == ["bm25 passage 1 0", "llm:a passage 1 0", "llm:b passage 1 0"]


def test_interleave_takes_one_from_each_source_in_turn_and_the_cap_keeps_the_mix():
    result = combine([BM25, LLM_B], CombineSettings(strategy="interleave"))
    assert texts(result.triplets[0]) == ["bm25 passage 0 0", "llm:b passage 0 0", "bm25 passage 0 1",
                                         "llm:b passage 0 1", "bm25 passage 0 2"]  # fmt: skip


def test_sources_select_by_name_or_pattern():
    result = combine([BM25, LLM_A, LLM_B], CombineSettings(sources=["llm:*"]))
    assert {n.source for n in result.triplets[0].negatives} == {"llm:a", "llm:b"}
    assert result.counts["negatives_unselected"] == 9


def test_only_shared_pairs_by_default_and_disjoint_files_are_an_error():
    partial = [triplet(0, "llm:a")]
    result = combine([BM25, partial], CombineSettings())
    assert [t.query_id for t in result.triplets] == ["q0"] and result.counts["pairs_not_shared"] == 2
    assert len(combine([BM25, partial], CombineSettings(pairs="all")).triplets) == 3
    with pytest.raises(HardnegError, match="no \\(query, positive\\) pair is in all of a.jsonl, b.jsonl"):
        combine([BM25[:1], LLM_A[1:]], CombineSettings(), ["a.jsonl", "b.jsonl"])


def test_the_same_passage_from_two_sources_counts_once_and_the_positive_never():
    copy = [triplet(0, "llm:a", prefix="bm25")]
    copy[0].negatives.append(Negative(text="  Positive 0 ", source="llm:a"))
    result = combine([BM25[:1], copy], CombineSettings())
    assert texts(result.triplets[0]) == texts(BM25[0]) and result.counts["duplicates_dropped"] == 4


class FixedScorer:
    """Scores a passage by the number at its end; the positive scores 5."""

    def score(self, queries, passages):
        return np.array([5.0 if p.startswith("positive") else float(p.split()[-1]) for p in passages])


def scored_triplet() -> Triplet:
    negatives = [Negative(text=f"passage {s}", source="llm:a") for s in (9, 5, 4.5, 3, 0.5)]
    return Triplet(query_id="q", query="q", positive_id="d", positive="positive", negatives=negatives)


@pytest.mark.parametrize(
    "filters, kept, reason",
    [
        ({"absolute_margin": 0.0}, ["passage 5", "passage 4.5", "passage 3", "passage 0.5"], "absolute_margin"),
        ({"absolute_margin": 1.0}, ["passage 3", "passage 0.5"], "absolute_margin"),
        ({"relative_margin": 0.05}, ["passage 4.5", "passage 3", "passage 0.5"], "relative_margin"),
        ({"min_score": 1.0}, ["passage 9", "passage 5", "passage 4.5", "passage 3"], "min_score"),
        ({"max_score": 4.0}, ["passage 3", "passage 0.5"], "max_score"),
    ],
)
def test_filters_drop_likely_false_negatives_and_too_easy_ones(filters, kept, reason):
    counts = Counter()
    [out] = filter_triplets([scored_triplet()], FilterSettings(**filters), counts, scorer=FixedScorer())
    assert texts(out) == kept and counts == {f"filtered_{reason}": 5 - len(kept)}


def test_presets_are_the_study_combinations_and_check_their_sources(tmp_path):
    paths = []
    for name, triplets in (("bm25", BM25), ("a", LLM_A), ("b", LLM_B)):
        paths.append(tmp_path / f"{name}.jsonl")
        write_records(paths[-1], triplets)
    result = combine_files(paths[:2], preset_config("llm+bm25"), tmp_path / "out.jsonl", preset="llm+bm25")
    assert result.counts["sources_out"] == {"bm25": 9, "llm:a": 9}
    every = combine_files(paths, preset_config("all-llms"), tmp_path / "all.jsonl", preset="all-llms")
    assert every.counts["sources_out"] == {"llm:a": 9, "llm:b": 6}
    with pytest.raises(HardnegError, match="exactly one LLM source, found 2 .*use 'all-llms\\+bm25'"):
        combine_files(paths, preset_config("llm+bm25"), tmp_path / "x.jsonl", preset="llm+bm25")
    with pytest.raises(HardnegError, match="needs a source matching 'cross-encoder:\\*'"):
        combine_files(paths, preset_config("all-llms+ce"), tmp_path / "x.jsonl", preset="all-llms+ce")
    with pytest.raises(HardnegError, match="unknown preset 'llm\\+dense'"):
        preset_config("llm+dense")


def test_cli_filters_one_file_with_a_bi_encoder_caps_and_writes_a_manifest(tmp_path, tiny_model_path):
    source = tmp_path / "in.jsonl"
    write_records(source, BM25 + [triplet(3, "bm25", count=0)])
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["combine", str(source), "-o", str(output), "--scorer", f"dense:{tiny_model_path}",
                                 "--max-score", "2", "--max-negatives", "2", "--min-negatives", "1", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = read_triplets(output)
    assert [t.query_id for t in written] == ["q0", "q1", "q2"] and all(len(t.negatives) == 2 for t in written)
    counts = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())["counts"]
    assert counts["negatives_over_cap"] == 3 and counts["triplets_below_min_negatives"] == 1
    assert counts["triplets"] == 3 and counts["negatives"] == 6 and "filtered_max_score" not in counts  # cosine <= 1


def test_cli_errors_are_one_line(tmp_path):
    good = tmp_path / "good.jsonl"
    write_records(good, BM25)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text().splitlines()[0] + "\n" + '{"query_id": "q9", "query": "x"}\n')
    result = runner.invoke(app, ["combine", str(good), str(bad), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and f"{bad}:2: field 'positive_id': missing" in result.stderr
    result = runner.invoke(app, ["combine", str(good), "-o", str(tmp_path / "o.jsonl"), "--max-score", "1"])
    assert result.exit_code == 2 and "filters need a scorer" in result.stderr
    result = runner.invoke(app, ["combine", str(good), "-o", str(tmp_path / "o.jsonl"), "--strategy", "per-source"])
    assert result.exit_code == 2 and "strategy 'per-source' needs per_source (--per-source N)" in result.stderr
    other = tmp_path / "other.jsonl"
    write_records(other, [BM25[0].model_copy(update={"query": "a query of another dataset"})])
    result = runner.invoke(app, ["combine", str(good), str(other), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and f"{other}:1: query 'q0' / positive 'd0' has other texts" in result.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_a_length_band_keeps_negatives_near_the_positive_length(tmp_path):
    from hardneg.combining.combine import combine_files
    from hardneg.settings.combine import CombineSettings
    from hardneg.data.records import Negative, Triplet, read_triplets, write_records

    positive = " ".join(["word"] * 100)
    negatives = [Negative(text=" ".join(["n"] * k) + f" {k}", source="llm:x") for k in (19, 49, 149, 249)]
    write_records(tmp_path / "in.jsonl", [Triplet(query_id="q", query="q?", positive_id="p", positive=positive, negatives=negatives)])
    result = combine_files([tmp_path / "in.jsonl"], CombineSettings(length_band=(0.5, 2.0)), tmp_path / "out.jsonl", show_progress=False)
    kept = [len(n.text.split()) for n in read_triplets(tmp_path / "out.jsonl")[0].negatives]
    assert kept == [50, 150] and result.counts["filtered_length_band"] == 2
    with pytest.raises(ValueError, match="length_band needs 0 <= low <= high"):
        CombineSettings(length_band=(2.0, 0.5))


def test_a_combination_that_keeps_no_negative_says_so_when_it_is_made(tmp_path, caplog):
    """The study's pool cross-encoder kept none of NFCorpus's swaps: the combine stage warns, rather
    than leave it to the training that reads its output."""
    positive = " ".join(["word"] * 100)
    negatives = [Negative(text=" ".join(["n"] * k), source="llm:x") for k in (5, 9)]
    write_records(tmp_path / "in.jsonl", [Triplet(query_id="q", query="q?", positive_id="p", positive=positive, negatives=negatives)])
    with caplog.at_level("WARNING", logger="hardneg.combining.combine"):
        result = combine_files([tmp_path / "in.jsonl"], CombineSettings(length_band=(0.5, 2.0)), tmp_path / "out.jsonl", show_progress=False)
    assert result.counts["negatives"] == 0 and (tmp_path / "out.jsonl").exists()
    assert f"{tmp_path / 'out.jsonl'}: none of the 2 negatives given is left" in caplog.text
    caplog.clear()
    combine_files([tmp_path / "in.jsonl"], CombineSettings(), tmp_path / "kept.jsonl", show_progress=False)
    assert "is left" not in caplog.text  # nothing said when negatives remain
