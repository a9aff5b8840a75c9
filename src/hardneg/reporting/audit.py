"""How hard each source's negatives are: the study's open question of whether generated negatives
are too easy (or secretly positives), measured per source by one scorer's view of negative vs
positive, plus the surface signs (length, word overlap, near-copies) that explain it."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from pydantic import BaseModel, computed_field

from hardneg.core.errors import HardnegError
from hardneg.core.io import save_figure
from hardneg.data.records import Triplet, read_triplets
from hardneg.settings.audit import AuditSettings

WORD = re.compile(r"\w+")
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have if in into is it its no not of on or such that the "
    "their then there these they this to was were which will with what how does do can".split()
)


class SourceAudit(BaseModel):
    triplets: int
    negatives: int
    false_negative_share: float
    hard_share: float
    easy_share: float
    mean_margin: float
    """Mean of (negative score - positive score): closer to 0 is harder."""
    median_negative_words: float
    median_positive_words: float

    @computed_field
    @property
    def length_ratio(self) -> float | None:
        """Median negative words over median positive words: near 1 when a generator matched the
        positives' length; far below 1 lets a model tell negatives from positives by length."""
        return self.median_negative_words / self.median_positive_words if self.median_positive_words else None

    query_overlap: float
    """Mean share of the query's content words that appear in the negative."""
    positive_overlap: float
    """Mean word-set Jaccard of negative and positive."""
    near_duplicate_share: float
    margins: list[float]
    """Every negative's margin, for the margin plot."""


class JudgeAgreement(BaseModel):
    """The LLM judge's verdicts (every negative it judged, dropped ones too) against this audit's
    scorer: 'yes' (answers the query) against 'likely false negative' (margin >= 0)."""

    judged: int
    unclear: int
    """Verdicts neither yes nor no: left out of the comparison."""
    judge_yes: int
    audit_false_negative: int
    both: int
    agreement: float | None
    cohen_kappa: float | None


class AuditResult(BaseModel):
    inputs: list[str]
    scorer: str
    settings: dict
    sources: dict[str, SourceAudit]
    judge: JudgeAgreement | None = None


def words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _near_duplicates(texts: list[str], threshold: float) -> list[bool]:
    sets = [words(t) for t in texts]
    flags = [False] * len(texts)
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if jaccard(sets[i], sets[j]) >= threshold:
                flags[i] = flags[j] = True
    return flags


def audit_triplets(
    triplets: list[Triplet], settings: AuditSettings, scorer, inputs: list[str]
) -> AuditResult:
    """Per negative ``source``: difficulty shares by score margin, lengths, overlaps, near-copies."""
    from hardneg.combining.filtering import score_triplets

    positives, negatives = score_triplets(triplets, scorer)
    rows: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for triplet, positive, scores in zip(triplets, positives, negatives):
        query_words, positive_words = words(triplet.query), words(triplet.positive)
        by_source: dict[str, list[int]] = defaultdict(list)
        for index, negative in enumerate(triplet.negatives):
            by_source[negative.source].append(index)
        for source, indexes in by_source.items():
            texts = [triplet.negatives[i].text for i in indexes]
            row = rows[source]
            row["triplets"].append(1)
            row["duplicates"] += _near_duplicates(texts, settings.near_duplicate)
            row["positive_words"].append(len(triplet.positive.split()))
            for i, text in zip(indexes, texts):
                negative_words = words(text)
                row["margins"].append(float(scores[i] - positive))
                row["words"].append(len(text.split()))
                row["query_overlap"].append(
                    len(query_words & negative_words) / len(query_words) if query_words else 0.0
                )
                row["positive_overlap"].append(jaccard(negative_words, positive_words))
    sources = {source: _summary(row, settings.easy_margin) for source, row in sorted(rows.items())}
    return AuditResult(
        inputs=inputs, scorer=settings.scorer_spec, settings=settings.model_dump(mode="json"), sources=sources
    )


def _summary(row: dict[str, list], easy_margin: float) -> SourceAudit:
    margins = np.array(row["margins"], dtype=float)
    false_negative = margins >= 0
    easy = margins < -easy_margin
    return SourceAudit(
        triplets=len(row["triplets"]),
        negatives=len(margins),
        false_negative_share=float(false_negative.mean()),
        hard_share=float((~false_negative & ~easy).mean()),
        easy_share=float(easy.mean()),
        mean_margin=float(margins.mean()),
        median_negative_words=float(np.median(row["words"])),
        median_positive_words=float(np.median(row["positive_words"])),
        query_overlap=float(np.mean(row["query_overlap"])),
        positive_overlap=float(np.mean(row["positive_overlap"])),
        near_duplicate_share=float(np.mean(row["duplicates"])),
        margins=[round(float(m), 4) for m in margins],
    )


def audit_file(
    paths: str | Path | list, settings: AuditSettings, show_progress: bool = True, scorer=None
) -> AuditResult:
    """Read triplet files, score, summarise. A source found in several files (say, two runs' BM25
    negatives) is audited per file, as ``<file stem>:<source>``, in every one of them."""
    from hardneg.combining.filtering import load_text_scorer

    paths = list(dict.fromkeys(Path(p) for p in (paths if isinstance(paths, list) else [paths])))
    loaded = {path: read_triplets(path) for path in paths}
    files_of: dict[str, set[Path]] = defaultdict(set)
    for path, triplets in loaded.items():
        for source in {n.source for t in triplets for n in t.negatives}:
            files_of[source].add(path)
    shared = {source for source, files in files_of.items() if len(files) > 1}
    triplets = [
        _relabel(t, shared, path.stem) if shared else t for path, part in loaded.items() for t in part
    ]
    if not any(t.negatives for t in triplets):
        raise HardnegError(f"{', '.join(map(str, paths))}: no negatives to audit")
    scorer = scorer or load_text_scorer(
        settings.scorer_spec, settings.batch_size, show_progress, settings.backend
    )
    result = audit_triplets(triplets, settings, scorer, [str(p) for p in paths])
    from hardneg.generation.judge import judged_path

    verdicts = [
        json.loads(line)
        for p in paths
        if judged_path(p).exists()
        for line in judged_path(p).read_text(encoding="utf-8").splitlines()
    ]
    if verdicts:
        result.judge = judge_agreement(verdicts, scorer)
    return result


def judge_agreement(verdicts: list[dict], scorer) -> JudgeAgreement:
    """Score each judged negative and its positive, then compare the two verdicts (Cohen's kappa)."""
    from hardneg.evaluation.stats import cohen_kappa

    clear = [v for v in verdicts if v["verdict"] in ("yes", "no")]
    queries = [v["query"] for v in clear]
    margins = scorer.score(queries, [v["text"] for v in clear]) - scorer.score(
        queries, [v["positive"] for v in clear]
    )
    judge_yes = np.array([v["verdict"] == "yes" for v in clear], dtype=bool)
    audit_yes = np.asarray(margins, dtype=float) >= 0
    table = np.array(
        [
            [np.sum(judge_yes & audit_yes), np.sum(judge_yes & ~audit_yes)],
            [np.sum(~judge_yes & audit_yes), np.sum(~judge_yes & ~audit_yes)],
        ]
    )
    labels = ("yes", "no")
    kappa = cohen_kappa([(labels[not j], labels[not a]) for j, a in zip(judge_yes, audit_yes)], labels)
    return JudgeAgreement(
        judged=len(verdicts),
        unclear=len(verdicts) - len(clear),
        judge_yes=int(judge_yes.sum()),
        audit_false_negative=int(audit_yes.sum()),
        both=int(table[0, 0]),
        agreement=float((judge_yes == audit_yes).mean()) if len(clear) else None,
        cohen_kappa=kappa,
    )


def _relabel(triplet: Triplet, sources: set[str], prefix: str) -> Triplet:
    negatives = [
        n.model_copy(update={"source": f"{prefix}:{n.source}"}) if n.source in sources else n
        for n in triplet.negatives
    ]
    return triplet.model_copy(update={"negatives": negatives})


AUDIT_COLUMNS = [
    "negatives",
    "false neg.",
    "hard",
    "too easy",
    "mean margin",
    "words (neg / pos)",
    "length ratio",
    "query overlap",
    "positive overlap",
    "near-dup.",
]


def audit_cells(a: SourceAudit) -> list[str]:
    """One source's audit as table cells, in ``AUDIT_COLUMNS`` order."""
    return [
        str(a.negatives),
        f"{a.false_negative_share:.0%}",
        f"{a.hard_share:.0%}",
        f"{a.easy_share:.0%}",
        f"{a.mean_margin:+.3f}",
        f"{a.median_negative_words:.0f} / {a.median_positive_words:.0f}",
        "-" if a.length_ratio is None else f"{a.length_ratio:.2f}",
        f"{a.query_overlap:.2f}",
        f"{a.positive_overlap:.2f}",
        f"{a.near_duplicate_share:.0%}",
    ]


def audit_rows(result: AuditResult) -> list[list[str]]:
    return [audit_cells(a) for a in result.sources.values()]


def labelled_audit_table(rows: list[tuple[str, str, SourceAudit]]) -> list[str]:
    """A study's Markdown audit table: one line per (row label, negatives' source, its audit)."""
    lines = [
        "| negatives | source | " + " | ".join(AUDIT_COLUMNS) + " |",
        "|---" * (len(AUDIT_COLUMNS) + 2) + "|",
    ]
    return lines + [
        f"| {label} | {source} | " + " | ".join(audit_cells(a)) + " |" for label, source, a in rows
    ]


def audit_markdown(result: AuditResult, title: str = "Negative audit") -> str:
    easy = result.settings["easy_margin"]
    lines = [
        f"# {title}",
        "",
        f"Scorer `{result.scorer}`; margin = score(negative) - score(positive). "
        f"Likely false negative: margin >= 0; hard: -{easy:g} <= margin < 0; too easy: margin < -{easy:g}. "
        "Overlap: share of the query's content words in the negative; word-set Jaccard with the positive. "
        f"Near-dup.: Jaccard >= {result.settings['near_duplicate']:g} "
        "with another negative of the same source and triplet.",
        "",
        "| source | " + " | ".join(AUDIT_COLUMNS) + " |",
        "|---" * (len(AUDIT_COLUMNS) + 1) + "|",
    ]
    for source, row in zip(result.sources, audit_rows(result)):
        lines.append(f"| {source} | " + " | ".join(row) + " |")
    if result.judge is not None:
        lines += ["", judge_line(result.judge)]
    return "\n".join(lines) + "\n"


def judge_line(judge: JudgeAgreement) -> str:
    kappa = "n/a" if judge.cohen_kappa is None else f"{judge.cohen_kappa:.2f}"
    agreement = "n/a" if judge.agreement is None else f"{judge.agreement:.0%}"
    return (
        f"LLM judge against this scorer: {judge.judged} negatives judged ({judge.unclear} unclear); "
        f"the judge says {judge.judge_yes} answer the query, "
        f"the scorer ranks {judge.audit_false_negative} at or above "
        f"the positive, {judge.both} both; agreement {agreement}, Cohen's kappa {kappa}."
    )


def plot_margins(groups: dict[str, list[float]], easy_margin: float, output: str | Path, title: str) -> Path:
    """One violin per group on a shared margin axis: a dozen sources stay readable, unlike overlaid
    histograms. Right of 0: likely false negatives; left of -easy_margin: too easy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(groups)
    figure, axis = plt.subplots(figsize=(8, 1.5 + 0.42 * len(names)))
    values = [m for margins in groups.values() for m in margins]
    low, high = min(values + [-easy_margin * 2]), max(values + [0.1])
    axis.axvspan(0, high, color="#dd8452", alpha=0.12)
    axis.axvspan(low, -easy_margin, color="#8c8c8c", alpha=0.12)
    axis.text(0.01, -0.85, "likely false negatives", fontsize=8, color="#a0522d", va="center")
    axis.text(-easy_margin - 0.01, -0.85, "too easy", fontsize=8, color="#555555", va="center", ha="right")
    drawn = [(i, groups[n]) for i, n in enumerate(names) if len(groups[n]) > 1]  # a violin needs two points
    if drawn:
        parts = axis.violinplot(
            [m for _, m in drawn],
            positions=[i for i, _ in drawn],
            orientation="horizontal",
            widths=0.8,
            showmedians=True,
            showextrema=False,
        )
        for body in parts["bodies"]:
            body.set_facecolor("#4c72b0")
            body.set_alpha(0.6)
    axis.set_yticks(range(len(names)), [f"{n} ({len(groups[n])})" for n in names], fontsize=8)
    axis.set_ylim(len(names) - 0.5, -1.2)  # the top line holds the zone names
    axis.axvline(0, color="black", linestyle="--", linewidth=1)
    axis.axvline(-easy_margin, color="grey", linestyle=":", linewidth=1)
    axis.set_xlim(low, high)
    axis.set_xlabel("score(negative) - score(positive)")
    axis.set_title(title)
    return save_figure(figure, output)
