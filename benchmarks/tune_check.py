"""`hardneg tune` checked against the truth (issue 22): tune on a dataset's train split within a
budget, then spend its test split once, here, to see how good the choice was.

1. ``hardneg tune DATASET --budget B`` (resumes: rerun the same command after a kill).
2. Every recipe's first-rung model (all recipes have one, trained on the same pairs) is tested on
   the whole test split: the rank correlation of the dev and test orderings (Spearman, Kendall).
3. The recommended recipe.toml is run as the user would run it (every train pair, the test split).
4. Both go to benchmarks/results/tune-DATASET.json, next to the study's rows for the dataset.

    python benchmarks/tune_check.py scifact --budget 1h -o ~/.cache/hardneg/tune-scifact
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scipy import stats

from hardneg.core.output import PipeConsole
from hardneg.experiment.executors import LocalExecutor
from hardneg.experiment.plan import BASE, build_plan
from hardneg.experiment.runner import run_experiment
from hardneg.settings.tune import TuneSettings
from hardneg.tuning import tune
from hardneg.tuning.candidates import catalog
from hardneg.tuning.search import Trial, read_scores, rung_config
from hardneg.tuning.split import prepare
from hardneg.tuning.tune import _template

ROOT = Path(__file__).resolve().parent.parent


def first_rung_on_test(settings: TuneSettings, output: Path, recommendation: dict, console) -> dict:
    """Each recipe's rung-1 model (cached in the tune's run folder) scored on the real test split."""
    data = prepare(settings, output)
    template = _template(None)
    tried = {row["recipe"] for row in recommendation["recipes"] if row["scores_by_rung"]}
    trials = [Trial(c) for c in catalog(settings, template, data.has_corpus) if c.name in tried]
    config = rung_config(
        template, data, trials, recommendation["rungs"][0], settings, test=(settings.dataset, "test")
    )
    plan = build_plan(config, output / "run", fetch=True)
    LocalExecutor(plan, console, True).run()
    scores = read_scores(plan, recommendation["metric"])
    return {name: sum(v.values()) / len(v) for name, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("--budget", default="1h")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    console = PipeConsole()
    settings = TuneSettings(dataset=args.dataset, budget=args.budget)
    started = time.time()
    result = tune(settings, args.output, console=console)
    tune_seconds = time.time() - started
    rec = result.recommendation
    test = first_rung_on_test(settings, args.output, rec, console)
    dev = {row["recipe"]: row["scores_by_rung"]["1"] for row in rec["recipes"] if row["scores_by_rung"]}
    names = sorted(dev)
    spearman = stats.spearmanr([dev[n] for n in names], [test[n] for n in names])
    # Many recipes are near-ties even fully trained: what a wrong order costs is the regret, the
    # best first-rung test score less the test score of the first-rung dev pick.
    pick = max(names, key=dev.get)
    regret = max(test[n] for n in names) - test[pick]
    kendall = stats.kendalltau([dev[n] for n in names], [test[n] for n in names])
    summary = run_experiment(args.output / "recipe.toml", args.output / "recipe-run", console=console)
    results = json.loads((summary.plan.run_dir / "results.json").read_text())
    metric = rec["metric"]
    column = results["columns"][0]
    recipe_test = {row["source"]: row["cells"][column]["metrics"][metric]["value"] for row in results["rows"]}
    study = json.loads((ROOT / "docs" / "results" / "study.json").read_text())
    study_rows = {
        row["source"]: row["cells"][args.dataset]["metrics"][metric]["value"]
        for row in study["rows"]
        if args.dataset in row["cells"]
    }
    best_study = max((k for k in study_rows if k != BASE), key=study_rows.get)
    out = {
        "dataset": args.dataset,
        "command": f"python benchmarks/tune_check.py {args.dataset} --budget {args.budget} -o {args.output}",
        "budget_seconds": rec["budget_seconds"],
        "tune_wall_seconds": round(tune_seconds, 1),
        "tune_spent_seconds": rec["spent_seconds"],
        "rungs": rec["rungs"],
        "rung_log": rec["rung_log"],
        "winner": rec["winner"],
        "verdict": rec["verdict"],
        "dev_base": rec["base"],
        "recipes": [
            {
                k: row.get(k)
                for k in ("recipe", "state", "rung", "value", "p_vs_base", "seconds", "corpus_free")
            }
            for row in rec["recipes"]
        ],
        "first_rung": {
            "dev": dev,
            "test": {n: round(test[n], 4) for n in names},
            "test_base": round(test[BASE], 4),
        },
        "spearman": {"rho": round(float(spearman.statistic), 3), "p": round(float(spearman.pvalue), 4)},
        "kendall": {"tau": round(float(kendall.statistic), 3), "p": round(float(kendall.pvalue), 4)},
        "first_rung_regret": {
            "dev_pick": pick,
            "test_of_pick": round(test[pick], 4),
            "regret": round(regret, 4),
        },
        "recipe_on_test": {k: round(v, 4) for k, v in recipe_test.items()},
        "recipe_train_pairs": "every train pair",
        "study_rows": {k: round(v, 4) for k, v in study_rows.items()},
        "study_best": {"row": best_study, "value": round(study_rows[best_study], 4), "train_pairs": 500},
    }
    path = ROOT / "benchmarks" / "results" / f"tune-{args.dataset}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(
        json.dumps(
            {k: out[k] for k in ("winner", "spearman", "kendall", "first_rung_regret", "recipe_on_test")},
            indent=2,
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
