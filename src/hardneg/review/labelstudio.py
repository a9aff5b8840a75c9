"""Human review of negatives through Label Studio: ``export`` samples negatives per source into a
project folder (tasks.json, labeling_config.xml, and key.json kept apart: the source and the audit's
class are hidden from annotators); ``import`` reads Label Studio's JSON export back and reports
label shares per source, agreement between annotators, and agreement of the audit with them."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from hardneg.core.errors import HardnegError
from hardneg.core.io import atomic_open, write_json
from hardneg.data.records import Triplet, read_triplets
from hardneg.evaluation.stats import cohen_kappa, fleiss, wilson

CONTROL = "difficulty"
CHOICES = ("too easy", "hard", "false negative", "unclear")
HINTS = {
    "too easy": "Clearly off-topic: a model learns little from telling it apart.",
    "hard": "Related to the query but does not answer it as the positive does.",
    "false negative": "Answers the query as well as the positive (it is really a positive).",
    "unclear": "Cannot tell.",
}


def audit_class(margin: float, easy_margin: float) -> str:
    """The audit's rule: at or above the positive, within ``easy_margin`` below it, or further."""
    return "false negative" if margin >= 0 else "hard" if margin >= -easy_margin else "too easy"


@dataclass
class Stratum:
    """One source's negatives, from one triplets file, with the audit's margins when known."""

    name: str
    path: Path
    triplets: list[Triplet]
    negative_source: str | None  # None: every negative of the file (a run cell)
    margins: dict[tuple[int, int], float] = field(default_factory=dict)
    easy_margin: float | None = None

    def candidates(self) -> list[tuple[int, int]]:
        return [
            (t, n)
            for t, triplet in enumerate(self.triplets)
            for n, negative in enumerate(triplet.negatives)
            if self.negative_source is None or negative.source == self.negative_source
        ]


def attach_audit(strata: list[Stratum], audit: dict[str, Any], where: Path) -> None:
    """Audit margins are kept per negative source, in file order: triplet by triplet, negative by negative."""
    easy = float(audit["settings"]["easy_margin"])
    for source, summary in audit["sources"].items():
        margins = summary["margins"]
        found = [
            (stratum, t, n)
            for stratum in strata
            for t, n in stratum.candidates()
            if stratum.triplets[t].negatives[n].source == source
        ]
        if len(found) != len(margins):
            raise HardnegError(
                f"{where}: {len(margins)} margins for source '{source}' but the triplets hold "
                f"{len(found)} of its negatives (audit of other files?)"
            )
        for (stratum, t, n), margin in zip(found, margins):
            stratum.margins[(t, n)] = float(margin)
            stratum.easy_margin = easy


def load_strata(inputs: list[Path], scorer: str | None = None) -> list[Stratum]:
    """Run folders: every cell's negatives file (one stratum per cell) and its audit; triplet files:
    one stratum per negative source (``file stem:source`` when two files share a source), audited
    only when ``scorer`` is given."""
    from hardneg.experiment.planfile import PlanFile

    strata: list[Stratum] = []
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            plan, seen = PlanFile.read(path), set()
            trains = {cell.train for cell in plan.cells if cell.negatives}
            for cell in plan.cells:
                if not cell.negatives or cell.negatives in seen or not (path / cell.negatives).is_file():
                    continue
                seen.add(cell.negatives)
                name = (
                    f"{cell.train}:{cell.source}" if len(trains) > 1 else cell.source
                )  # one source per train set
                stratum = Stratum(name, path / cell.negatives, read_triplets(path / cell.negatives), None)
                if cell.audit and (path / cell.audit).is_file():
                    audit = json.loads((path / cell.audit).read_text(encoding="utf-8"))
                    attach_audit([stratum], audit, path / cell.audit)
                strata.append(stratum)
        else:
            files.append(path)
    loaded = {path: read_triplets(path) for path in dict.fromkeys(files)}
    owners = Counter(
        s for triplets in loaded.values() for s in {n.source for t in triplets for n in t.negatives}
    )
    for path, triplets in loaded.items():
        sources = sorted({n.source for t in triplets for n in t.negatives})
        part = [Stratum(f"{path.stem}:{s}" if owners[s] > 1 else s, path, triplets, s) for s in sources]
        if scorer:
            from hardneg.reporting.audit import audit_file
            from hardneg.settings.audit import AuditSettings

            attach_audit(part, audit_file(path, AuditSettings(scorer=scorer)).model_dump(mode="json"), path)
        strata += part
    names = Counter(s.name for s in strata)
    for stratum in strata:  # two runs with the same cell names
        if names[stratum.name] > 1:
            stratum.name = f"{stratum.name} ({stratum.path})"
    if not any(s.candidates() for s in strata):
        raise HardnegError(f"{', '.join(map(str, inputs))}: no negatives to review")
    return strata


def sample_items(strata: list[Stratum], per_source: int, borderline: int, seed: int) -> list[dict[str, Any]]:
    """``per_source`` negatives drawn at random per stratum, plus up to ``borderline`` more whose
    audit margin lies closest to a class boundary (0 or -easy_margin); tasks shuffled, ids opaque."""
    items = []
    for stratum in strata:
        rng = random.Random(f"{seed}:{stratum.name}")
        candidates = stratum.candidates()
        chosen = rng.sample(candidates, min(per_source, len(candidates)))
        picked = [(c, "random") for c in chosen]
        if borderline and stratum.margins:
            easy = stratum.easy_margin or 0.0
            taken = set(chosen)
            rest = [c for c in candidates if c not in taken and c in stratum.margins]
            rest.sort(key=lambda c: min(abs(stratum.margins[c]), abs(stratum.margins[c] + easy)))
            picked += [(c, "borderline") for c in rest[:borderline]]
        for (t, n), how in picked:
            triplet, negative = stratum.triplets[t], stratum.triplets[t].negatives[n]
            margin = stratum.margins.get((t, n))
            task = {"query": triplet.query, "positive": triplet.positive, "negative": negative.text}
            items.append(
                {
                    "task": task,
                    "key": {
                        "source": stratum.name,
                        "sample": how,
                        "triplets": str(stratum.path),
                        "triplet_index": t,
                        "negative_index": n,
                        "query_id": triplet.query_id,
                        "positive_id": triplet.positive_id,
                        "negative_doc_id": negative.doc_id,
                        "negative_source": negative.source,
                        "margin": margin,
                        "audit_class": None
                        if margin is None
                        else audit_class(margin, stratum.easy_margin or 0.0),
                    },
                }
            )
    random.Random(seed).shuffle(items)
    return items


def labeling_config() -> str:
    choices = "\n".join(f"    <Choice value={quoteattr(c)} hint={quoteattr(HINTS[c])}/>" for c in CHOICES)
    return f"""<View>
  <Header value="Query"/>
  <Text name="query" value="$query"/>
  <Header value="Relevant passage (the positive)"/>
  <Text name="positive" value="$positive"/>
  <Header value="Candidate negative"/>
  <Text name="negative" value="$negative"/>
  <Header value="As a negative for this query, next to the positive, this passage is:"/>
  <Choices name="{CONTROL}" toName="negative" choice="single-radio" required="true" showInline="true">
{choices}
  </Choices>
</View>
"""


def export_review(
    inputs: list[Path],
    output: Path,
    per_source: int,
    borderline: int = 0,
    seed: int = 0,
    scorer: str | None = None,
) -> dict[str, Any]:
    """Write tasks.json, labeling_config.xml and key.json into ``output``; returns counts."""
    strata = load_strata(inputs, scorer)
    items = sample_items(strata, per_source, borderline, seed)
    width = max(4, len(str(len(items))))
    tasks, key = [], {}
    for number, item in enumerate(items, start=1):
        item_id = f"n{number:0{width}d}"
        tasks.append({"data": {**item["task"], "item": item_id}})
        key[item_id] = item["key"]
    write_json(output / "tasks.json", tasks)
    with atomic_open(output / "labeling_config.xml") as handle:
        handle.write(labeling_config())
    write_json(
        output / "key.json",
        {
            "control": CONTROL,
            "choices": list(CHOICES),
            "seed": seed,
            "inputs": [str(p.resolve()) for p in inputs],
            "items": key,
        },
    )
    counts = Counter(f"{v['source']} ({v['sample']})" for v in key.values())
    return {"tasks": len(tasks), **dict(sorted(counts.items()))}


def read_labels(export: Path, key: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Item id -> annotator -> label, from Label Studio's JSON export; cancelled (skipped) annotations
    and annotations without the choice are left out. Bad input: one line naming the file and task."""
    try:
        tasks = json.loads(export.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HardnegError(f"{export}: not a readable JSON file ({type(exc).__name__})") from None
    if not isinstance(tasks, list):
        raise HardnegError(
            f"{export}: expected a list of tasks (Label Studio's JSON export), got {type(tasks).__name__}"
        )
    control, choices = key.get("control", CONTROL), key.get("choices", list(CHOICES))
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    for index, task in enumerate(tasks):
        where = f"{export}: task {index}"
        data = task.get("data") if isinstance(task, dict) else None
        item = data.get("item") if isinstance(data, dict) else None
        if not isinstance(item, str):
            raise HardnegError(f"{where}: no data.item (not a task exported by `hardneg review export`)")
        if item not in key["items"]:
            raise HardnegError(f"{where}: unknown item '{item}' (not in the key)")
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            raise HardnegError(f"{where}: annotations is not a list")
        for annotation in annotations:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            who = annotation.get("completed_by")
            who = who.get("email") or who.get("id") if isinstance(who, dict) else who
            for result in annotation.get("result") or []:
                if not isinstance(result, dict) or result.get("from_name") != control:
                    continue
                value = result.get("value")
                picked = value.get("choices") or [] if isinstance(value, dict) else []
                picked = picked if isinstance(picked, list) else [picked]
                for label in picked:
                    if not isinstance(label, str) or label not in choices:
                        raise HardnegError(f"{where}: label '{label}' is not one of: {', '.join(choices)}")
                if picked:
                    labels[item][str(who)] = picked[0]
    return dict(labels)


def majority(votes: list[str]) -> str:
    """The most frequent label; a tie between labels counts as 'unclear'."""
    ranked = Counter(votes).most_common()
    return ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else "unclear"


def review_report(labels: dict[str, dict[str, str]], key: dict[str, Any]) -> dict[str, Any]:
    items = key["items"]
    decided = {item: majority(list(votes.values())) for item, votes in labels.items() if votes}
    sources: dict[str, Any] = {}
    for source in sorted({v["source"] for v in items.values()}):
        chosen = [
            decided[i]
            for i, v in items.items()
            if v["source"] == source and v["sample"] == "random" and i in decided
        ]
        counts = Counter(chosen)
        sources[source] = {
            "items": len(chosen),
            "labels": {
                c: {
                    "count": counts[c],
                    "share": counts[c] / len(chosen),
                    "ci95": wilson(counts[c], len(chosen)),
                }
                for c in CHOICES
            }
            if chosen
            else {},
        }
    pairs = [(items[i]["audit_class"], label) for i, label in decided.items() if items[i]["audit_class"]]
    per_class = {}
    for c in CHOICES[:3]:
        humans = [label for audit, label in pairs if audit == c]
        agree = sum(label == c for label in humans)
        per_class[c] = {
            "items": len(humans),
            "agree": agree,
            "share": agree / len(humans) if humans else None,
            "ci95": wilson(agree, len(humans)) if humans else None,
        }
    return {
        "items": len(items),
        "labelled_items": len(decided),
        "annotations": sum(len(v) for v in labels.values()),
        "sources": sources,
        "fleiss": fleiss(labels, CHOICES),
        "audit": {
            "items": len(pairs),
            "per_class": per_class,
            "cohen_kappa": cohen_kappa(pairs, CHOICES),
            "confusion": {a: dict(Counter(h for x, h in pairs if x == a)) for a in CHOICES[:3]},
        },
    }


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def review_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Human review of negatives",
        "",
        f"{report['labelled_items']} of {report['items']} items labelled, "
        f"{report['annotations']} annotations. "
        "An item's label is its annotators' majority (a tie counts as 'unclear'). "
        "Shares use the randomly drawn items only (not the borderline ones), with 95% Wilson intervals.",
        "",
        "| source | items | " + " | ".join(CHOICES) + " |",
        "|---" * (len(CHOICES) + 2) + "|",
    ]
    for source, row in report["sources"].items():
        cells = [
            f"{row['labels'][c]['share']:.0%} "
            f"({row['labels'][c]['ci95'][0]:.0%}-{row['labels'][c]['ci95'][1]:.0%})"
            if row["labels"]
            else ""
            for c in CHOICES
        ]
        lines.append(f"| {source} | {row['items']} | " + " | ".join(cells) + " |")
    f = report["fleiss"]
    lines += [
        "",
        "## Agreement between annotators",
        "",
        f"Fleiss' kappa {_num(f['kappa'])} over {f['items']} items with {f['annotators_per_item'] or '-'} "
        f"annotators each ({f['left_out']} items with another number of annotators left out).",
        "",
        "## The automatic audit against the humans",
        "",
        f"{report['audit']['items']} items (random and borderline) with an audit class and a human label. "
        "Humans agree: the share of an audit class's items whose majority label is that class ('unclear' "
        "counts as not agreeing). Cohen's kappa, audit vs majority label: "
        f"{_num(report['audit']['cohen_kappa'])}.",
        "",
        "| audit class | items | humans agree |",
        "|---|---|---|",
    ]
    for c, row in report["audit"]["per_class"].items():
        share = (
            "" if row["share"] is None else f"{row['share']:.0%} ({row['ci95'][0]:.0%}-{row['ci95'][1]:.0%})"
        )
        lines.append(f"| {c} | {row['items']} | {share} |")
    return "\n".join(lines) + "\n"


def review_run(key: dict[str, Any]) -> Path | None:
    """The run folder a key was drawn from, when it was drawn from exactly one: the review then also
    goes into that folder, where `hardneg report` shows it next to the audit."""
    inputs = [Path(p) for p in key.get("inputs") or []]
    return inputs[0] if len(inputs) == 1 and (inputs[0] / "plan.json").is_file() else None


def import_review(export: Path, key_path: Path | None = None, output: Path | None = None) -> dict[str, Any]:
    """Read Label Studio's export against key.json; write review.md and review.json into ``output``
    (default: the key's folder) and into the run folder the key was drawn from, if one."""
    key_path = key_path or export.parent / "key.json"
    if not key_path.is_file():
        raise HardnegError(
            f"{key_path}: no key file (pass --key DIR/key.json, written by `hardneg review export`)"
        )
    try:
        key = json.loads(key_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        key = None
    if not isinstance(key, dict) or not isinstance(key.get("items"), dict):
        raise HardnegError(f"{key_path}: not a key.json written by `hardneg review export`")
    report = review_report(read_labels(export, key), key)
    folders = [output or key_path.parent]
    run = review_run(key)
    if run is not None and run.resolve() != folders[0].resolve():
        folders.append(run)
    for folder in folders:
        write_json(folder / "review.json", {"export": str(export), "key": str(key_path), **report})
        with atomic_open(folder / "review.md") as handle:
            handle.write(review_markdown(report))
    return {**report, "written": [str(f) for f in folders]}
