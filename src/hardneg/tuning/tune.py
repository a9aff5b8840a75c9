"""The tune end to end: the dev split, the candidates, the search, then the recommendation, the
winner's ``hardneg run`` config and its training set built from every train pair."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from hardneg.core.errors import HardnegError
from hardneg.core.io import atomic_open
from hardneg.core.output import PipeConsole
from hardneg.experiment.config import read_toml
from hardneg.experiment.plan import Plan, ancestors, build_plan
from hardneg.reporting.costs import spent
from hardneg.settings.base import DEFAULT_BI_ENCODER
from hardneg.settings.exchange import ExportSettings
from hardneg.settings.experiment import ExecutorSettings, ExperimentSettings, shared_tables
from hardneg.settings.tune import TuneSettings
from hardneg.stages.rates import MachineRates
from hardneg.tuning import recommend
from hardneg.tuning.candidates import catalog
from hardneg.tuning.clock import Clock
from hardneg.tuning.search import (
    BASE,
    Search,
    Trial,
    fit_rungs,
    negatives_cost,
    rung_config,
    rung_sizes,
    trial_costs,
)
from hardneg.tuning.split import ALL, DEV, TuneData, prepare

DEFAULT_TEMPLATE: dict[str, Any] = {
    "base_model": DEFAULT_BI_ENCODER,
    "pairs": {"one_per_query": True},
    "train": {
        "num_negatives": 3,
        "max_seq_length": 128,
        "epochs": 1,
        "eval_steps": 10,
        "learning_rate": 5e-5,
    },
    "evaluation": {"dense": {"max_seq_length": 128, "batch_size": 32}},
}
"""The study's settings (docs/results.md): what a tune trains and scores with unless --config says."""


@dataclass
class TuneResult:
    output: Path
    recommendation: dict[str, Any] | None
    """None for a dry run."""
    winner: str | None = None


def _template(config: str | Path | None) -> dict[str, Any]:
    template = copy.deepcopy(DEFAULT_TEMPLATE)
    if config is None:
        return template
    own = read_toml(Path(config))
    for key in ("datasets",):
        own.pop(key, None)  # the tune decides what is trained and scored
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(template.get(key), dict) and key != "sources":
            template[key] = {**template[key], **value}
        else:
            template[key] = value
    return template


def _stage_seconds(run_dir: Path, stage) -> float:
    """What a stage cost in wall time, its interrupted attempts included."""
    seconds, lost = spent(run_dir, stage)
    return (seconds or 0.0) + sum(lost)


def _measured_costs(search: Search, plans: list[Plan]) -> dict[str, float]:
    """Wall seconds of the stages each recipe added over all rungs (a shared stage counts once)."""
    counted: set[str] = set()
    costs: dict[str, float] = {}
    for plan in plans:
        cells = {cell.source: cell for cell in plan.cells}
        by_output = {s.output: s for s in plan.stages}
        for name in [BASE, *[t.candidate.name for t in search.trials]]:
            if name not in cells:
                continue
            stages = [
                s
                for s in ancestors(plan.stages, by_output[cells[name].evaluation].key)
                if s.key not in counted
            ]
            counted.update(s.key for s in stages)
            costs[name] = costs.get(name, 0.0) + sum(_stage_seconds(plan.run_dir, s) for s in stages)
    return costs


def _recipe(
    template: dict, settings: TuneSettings, data: TuneData, trial: Trial, internal: bool = False
) -> dict[str, Any]:
    """The winner on every train pair: the user's dataset (tested on its test split by ``hardneg
    run``), or, from a pairs file, the tune's folder with all pairs in its ``all`` split. ``internal``:
    the same training set as the tune builds it, from its own folder's ``all`` split (the same
    judgments and corpus), so that the tune itself never opens the dataset's other splits."""
    if settings.pairs is None and not internal:
        folder = Path(settings.dataset).expanduser()  # a folder by its full path; a name stays a name
        name = str(folder.resolve()) if (folder / "qrels").is_dir() else settings.dataset
        spec = {"train": name, "train_split": settings.train_split}
    else:
        spec = {"train": str(data.folder), "train_split": ALL, "test": [str(data.folder)], "test_split": DEV}
    spec["sources"] = [trial.candidate.name]
    config = shared_tables(template)
    config = {**config, "name": f"tuned-{Path(data.source).stem}", "datasets": [spec]}
    config["pairs"] = {k: v for k, v in config.get("pairs", {}).items() if k != "max_pairs"}
    config["sources"] = trial.candidate.sources
    return _no_none(config)


def _no_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_none(v) for v in value]
    return value


def _final_cost(template, settings, data, trials: dict[str, Trial], run_dir: Path, rates: MachineRates):
    """Estimated seconds of the winner's training set: the costliest of ``names`` (or their mean)."""

    def cost(names: list[str], mean: bool = False) -> float:
        each = []
        for name in names:
            config = ExperimentSettings.model_validate(
                _recipe(template, settings, data, trials[name], internal=True)
            )
            each.append(negatives_cost(build_plan(config, run_dir), name, rates))
        return (sum(each) / len(each) if mean else max(each)) if each else 0.0

    return cost


def tune(
    settings: TuneSettings,
    output: str | Path,
    config: str | Path | None = None,
    executor: ExecutorSettings | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    dry_run: bool = False,
) -> TuneResult:
    """Find the recipe for ``settings.dataset`` (or ``settings.pairs``) and write, in ``output``:
    recommendation.md/.json, recipe.toml and train/ (the winner's training set from every pair)."""
    from hardneg.experiment.runner import check_run_dir

    console = console or PipeConsole()
    output = Path(output)
    check_run_dir(output)
    run_dir = output / "run"
    data = prepare(settings, output)
    template = _template(config)
    where = str(config or "hardneg tune")
    trials = [Trial(c) for c in catalog(settings, template, data.has_corpus, where)]
    one_per_query = template.get("pairs", {}).get("one_per_query", False)
    rungs = rung_sizes(data.train_queries if one_per_query else data.train_pairs, settings)
    first = rung_config(template, data, trials, rungs[0], settings, where)
    plan = build_plan(first, run_dir)
    reads = {cell.source: cell.corpus_reads for cell in plan.cells}
    for trial in trials:
        trial.corpus_reads = reads.get(trial.candidate.name, [])
    if settings.corpus_free:
        trials = [t for t in trials if not t.corpus_reads]
        if not trials:
            raise HardnegError("--corpus-free: no candidate is corpus-free (the pool recipes were excluded?)")
    clock = Clock(output / "tune-state.json", settings.budget_seconds)

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=not console.is_terminal)

    search = Search(
        settings, template, data, run_dir, clock, console, executor or ExecutorSettings(), show_progress
    )
    search.trials = trials
    named = {t.candidate.name: t for t in trials}
    search.final_cost = _final_cost(template, settings, data, named, run_dir, clock.rates)
    key = hashlib.sha256(
        json.dumps([settings.model_dump(mode="json"), template, [t.candidate.name for t in trials]]).encode()
    ).hexdigest()[:16]
    if clock.plan and clock.plan.get("key") == key:
        rungs = search.rungs = clock.plan["rungs"]
        clock.plan.setdefault("brackets", [clock.plan.pop("counts", None)] if "counts" in clock.plan else [])
    else:
        rungs = fit_rungs(search, rungs[-1])
        clock.plan = {"key": key, "rungs": rungs, "brackets": [search.allotment(trials)]}
        clock.save()
    search.counts = clock.plan["brackets"][0] if clock.plan["brackets"] else search.allotment(trials)
    say(
        f"tune {data.source}: {data.train_queries} train queries, {data.dev_queries} dev queries "
        f"({'corpus' if data.has_corpus else 'no corpus: the pool of positives'}); {len(trials)} recipes; "
        f"rungs of {', '.join(map(str, rungs))} train pairs; budget {clock.budget / 60:.0f} min "
        f"({clock.spent / 60:.0f} spent before)"
    )
    if clock.rates.describe():
        say(clock.rates.describe())
    if dry_run:
        _print_dry_run(say, plan, search)
        return TuneResult(output, None)

    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(direction="maximize", study_name="hardneg-tune")
    with clock:  # saved every 10 s, through the search and the winner's training set
        search.run(study)
        winner = next((t for t in sorted(trials, key=recommend.rank_key) if t.scores), None)
        built = _finish(winner, template, settings, data, output, run_dir, search) if winner else {}
    plans = [
        build_plan(
            rung_config(template, data, [t for t in trials if r in t.scores] or trials[:1], n, settings),
            run_dir,
        )
        for r, n in enumerate(rungs)
    ]
    table = recommend.rows(search, _measured_costs(search, plans))
    base = sum(search.base.values()) / len(search.base) if search.base else None
    result: dict[str, Any] = {
        "dataset": data.source,
        "base_model": template.get("base_model"),
        "metric": search.metric,
        "seed": settings.seed,
        "dev_queries": data.dev_queries,
        "train_queries": data.train_queries,
        "dev_scoring": (
            f"among their judged documents and BM25's top {settings.dev_pool_depth}"
            if settings.dev_pool_depth
            else (
                "against the whole corpus" if data.has_corpus else "against the pool of all pairs' positives"
            )
        ),
        "rungs": rungs,
        "rung_log": search.log,
        "budget_seconds": clock.budget,
        "base": round(base, 4) if base is not None else None,
        "recipes": table,
        "winner": winner.candidate.name if winner else None,
        "recipe_file": str(output / "recipe.toml"),
        "train_folder": str(output / "train"),
        "corpus_free_only": settings.corpus_free,
        **built,
    }
    result["spent_seconds"] = round(clock.spent, 1)
    result["verdict"] = recommend.verdict(table, base, search.metric)
    recommend.write(output, result)
    clock.save(finished=True)
    _journal(study, output)
    say(result["verdict"])
    say(f"recommendation: {output / 'recommendation.md'} (and recommendation.json, recipe.toml, train/)")
    return TuneResult(output, result, result["winner"])


def _finish(winner, template, settings, data, output, run_dir, search) -> dict[str, Any]:
    """recipe.toml, then the winner's negatives from every train pair, exported; what was built."""
    from hardneg.data.exchange import export_triplets
    from hardneg.experiment.runner import make_executor

    recipe = _recipe(template, settings, data, winner)
    comment = (
        f"The recipe `hardneg tune` chose for {data.source} ({winner.candidate.label}).\n"
        f"Run: hardneg run {output / 'recipe.toml'} -o runs/tuned\n"
        + (
            "It trains on every pair (the dev queries included) and tests on the dataset's test split."
            if settings.pairs is None
            else "The dev queries are among its training pairs here: test on a set of your own."
        )
    )
    with atomic_open(output / "recipe.toml") as handle:
        handle.write(recommend.recipe_toml(recipe, comment))
    config = ExperimentSettings.model_validate(_recipe(template, settings, data, winner, internal=True))
    plan = build_plan(config, run_dir, fetch=True)
    negatives = next(cell.negatives for cell in plan.cells if cell.source == winner.candidate.name)
    node = next(s for s in plan.stages if s.output == negatives)
    needed = {s.key for s in ancestors(plan.stages, node.key)}
    partial = Plan(plan.run_dir, plan.config, [s for s in plan.stages if s.key in needed], [], plan.notes)
    search.say(f"the winner's training set from all train pairs: {winner.candidate.name}")
    executor = make_executor(search.executor, partial, search.console, search.show_progress)
    executor.deadline = search.clock.deadline()
    outcome = executor.run()
    if node.key in outcome.failed:
        why = f"not built: {outcome.failed[node.key]} (rerun the same command to finish it)"
        return {"train_folder": None, "train_note": why}
    path = run_dir / negatives
    train = output / "train"
    export_triplets([path], ExportSettings(format="hf"), train / "hf")
    exported = export_triplets([path], ExportSettings(format="parquet"), train / "train.parquet")
    return {"train_rows": exported.counts.get("rows")}


def _journal(study, output: Path) -> None:
    """The trials in Optuna's own journal format (optuna-dashboard, ``optuna.load_study``)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = output / "optuna.journal"
    path.unlink(missing_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    optuna.copy_study(from_study_name=study.study_name, from_storage=study._storage, to_storage=storage)


def _print_dry_run(say, plan: Plan, search: Search) -> None:
    """Each recipe's first-rung cost, and what the budget buys: the allotment the search will use."""
    trials, rungs = search.trials, search.rungs
    plan = build_plan(
        rung_config(search.template, search.data, trials, rungs[0], search.settings), plan.run_dir
    )
    costs = trial_costs(plan, [t.candidate.name for t in trials], search.clock.rates)
    say(f"untuned base on the dev split: ~{costs[BASE] / 60:.1f} min")
    counts = search.counts
    for number, trial in enumerate(trials, start=1):
        free = "corpus-free" if not trial.corpus_reads else "reads the corpus"
        cost = costs[trial.candidate.name] / 60
        say(
            f"  {trial.candidate.name}: {trial.candidate.label} ({free}); rung 1 ~{cost:.1f} min"
            + ("" if number <= counts[0] else " (beyond the budget: not tried)")
        )
    say(
        "the budget buys, roughly: "
        + "; ".join(
            f"rung {i + 1}: {k} recipe(s) on {n} pairs" for i, (k, n) in enumerate(zip(counts, rungs))
        )
        + f" ({search.clock.left / 60:.0f} min left; give --include, --exclude or --loss to choose which "
        "recipes go first)"
    )
