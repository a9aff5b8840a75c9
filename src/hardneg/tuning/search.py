"""Successive halving over candidate recipes, each rung an ordinary grid of cached stages.

Every candidate trains on a small seeded sample of the train pairs and is scored on the dev split;
the best 1/eta go on to eta times more pairs, the last rung to all of them. Optuna holds the trials
(asked, reported at each rung, told pruned or complete; its journal is written to the tune folder
for Optuna's own tools). The rung decision is made once every trial of the rung has reported:
Optuna's SuccessiveHalvingPruner decides as each trial reports and cannot suspend one, so it would
promote whichever trials report first, while our rungs run as one batch (side by side on Ray).

The budget: before a rung, its trials are admitted in order of their last score while their
estimated cost (the dry run's rates, corrected by what earlier rungs really took) fits the time
left, less what the winner's full training set will cost; the executor starts no stage after
1.1x the budget, so the command ends within that plus the one stage running then."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from hardneg.experiment.config import validate_experiment
from hardneg.experiment.executors import BUDGET_SPENT
from hardneg.experiment.plan import BASE, Plan, ancestors, build_plan
from hardneg.settings.experiment import ExecutorSettings, ExperimentSettings, shared_tables
from hardneg.settings.tune import TuneSettings
from hardneg.stages.rates import MachineRates
from hardneg.tuning.candidates import Candidate
from hardneg.tuning.clock import Clock
from hardneg.tuning.split import DEV, TRAIN, TuneData


@dataclass
class Trial:
    candidate: Candidate
    scores: dict[int, float] = field(default_factory=dict)
    """Rung -> dev metric."""
    per_query: dict[int, dict[str, float]] = field(default_factory=dict)
    state: str = "running"
    """running, complete, pruned (by a rung), unfunded (the budget ran out before it), failed."""
    note: str = ""
    corpus_reads: list[str] = field(default_factory=list)

    @property
    def rung(self) -> int:
        return max(self.scores) if self.scores else -1


def rung_sizes(train_pairs: int, settings: TuneSettings) -> list[int]:
    """Pairs per rung: min_pairs, x eta, ..., and all of them last (fewer rungs for small data)."""
    sizes = [train_pairs]
    while len(sizes) < settings.max_rungs:
        smaller = math.ceil(sizes[0] / settings.reduction_factor)
        if smaller < settings.min_pairs:
            break
        sizes.insert(0, smaller)
    return sizes


def fit_rungs(search: Search, train_pairs: int) -> list[int]:
    """The rungs, their top made smaller (all pairs, then 1/eta of them, ...) until the first rung
    can afford 2 eta recipes (so two reach the second rung), or only two rungs are left: a large
    dataset's full training would otherwise eat a budget that should compare recipes; the winner's
    recipe.toml trains on every pair anyway."""
    settings, top = search.settings, train_pairs
    want = min(len(search.trials), 2 * settings.reduction_factor)
    while True:
        search.rungs = rung_sizes(top, settings)
        if search.allotment(search.trials)[0] >= want or len(search.rungs) <= 2:
            return search.rungs
        top = max(settings.min_pairs, math.ceil(top / settings.reduction_factor))


def rung_config(
    template: dict[str, Any],
    data: TuneData,
    trials: list[Trial],
    pairs: int | None,
    settings: TuneSettings,
    where: str = "hardneg tune",
    test: tuple[str, str] | None = None,
) -> ExperimentSettings:
    """One rung as a grid: these trials' sources on ``pairs`` train pairs, scored on the dev split
    (or, for a check against the truth, on ``test``: a dataset and its split, whole)."""
    sources: dict[str, dict] = {}
    for trial in trials:
        sources.update(trial.candidate.sources)
    evaluation = {
        **template.get("evaluation", {}),
        "pool_depth": settings.dev_pool_depth,
        "max_queries": None,
    }
    config = {
        **shared_tables(template),
        "name": "tune",
        "datasets": [
            {
                "train": str(data.folder),
                "test": [str(data.folder)],
                "train_split": TRAIN,
                "test_split": DEV,
                "sources": [t.candidate.name for t in trials],
            }
        ],
        "pairs": {**template.get("pairs", {}), "max_pairs": pairs, "seed": settings.seed},
        "audit": {**template.get("audit", {}), "enabled": False},
        "evaluation": evaluation,
        "sources": sources,
    }
    if test is not None:
        config["datasets"][0].update(test=[test[0]], test_split=test[1])
        evaluation["pool_depth"] = None
    return validate_experiment(config, where)


def trial_costs(plan: Plan, names: list[str], rates: MachineRates) -> dict[str, float]:
    """Estimated seconds each trial adds, in this order (a stage two trials share is the first's)."""
    counted: set[str] = set()
    costs: dict[str, float] = {}
    cells = {cell.source: cell for cell in plan.cells}
    by_output = {s.output: s for s in plan.stages}
    for name in [BASE, *names]:
        stage = by_output[cells[name].evaluation]
        todo = [s for s in ancestors(plan.stages, stage.key) if s.key not in counted and not plan.done(s)]
        counted.update(s.key for s in todo)
        costs[name] = rates.total(todo)
    return costs


def negatives_cost(plan: Plan, name: str, rates: MachineRates) -> float:
    """Estimated seconds to build one source's negatives (no training) in ``plan``."""
    node = next(s for s in plan.stages if s.output == _negatives_output(plan, name))
    return rates.total(s for s in ancestors(plan.stages, node.key) if not plan.done(s))


def _negatives_output(plan: Plan, name: str) -> str:
    return next(cell.negatives for cell in plan.cells if cell.source == name)


def read_scores(plan: Plan, metric: str) -> dict[str, dict[str, float]]:
    """Source -> per-query dev metric, for every cell whose evaluation is on disk."""
    found: dict[str, dict[str, float]] = {}
    for cell in plan.cells:
        path = plan.run_dir / cell.evaluation
        if path.exists():
            result = json.loads(path.read_text())
            found[cell.source] = {q: s[metric] for q, s in result["per_query"].items()}
    return found


@dataclass
class Search:
    settings: TuneSettings
    template: dict[str, Any]
    data: TuneData
    run_dir: Path
    clock: Clock
    console: Console
    executor: ExecutorSettings
    show_progress: bool = True
    final_cost: Any = None
    """Callable(names) -> estimated seconds of the costliest winner's full training set."""
    trials: list[Trial] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    """Recipes each rung of the first bracket can afford (``allotment``); later brackets are planned
    from the time left and saved with the clock's plan."""
    bracket: int = 0
    base: dict[str, float] = field(default_factory=dict)
    rungs: list[int] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=not self.console.is_terminal)

    @property
    def metric(self) -> str:
        metrics = self.template.get("evaluation", {}).get("metrics") or ["ndcg@10"]
        return metrics[0]

    def run(self, study: Any) -> None:
        import optuna

        names = [t.candidate.name for t in self.trials]
        handles = {}
        for trial in self.trials:
            study.enqueue_trial({"recipe": trial.candidate.name})
            handle = study.ask()
            handle.suggest_categorical("recipe", names)
            handle.set_user_attr("label", trial.candidate.label)
            handles[trial.candidate.name] = handle
        plan = self.clock.plan if self.clock.plan is not None else {}
        brackets = plan.setdefault("brackets", [self.counts] if self.counts else [])
        pending, self.bracket = list(self.trials), 0
        while pending:  # a bracket over the recipes no earlier bracket could afford, while time is left
            if self.bracket == len(brackets):
                brackets.append(self.allotment(pending))
                self.clock.save()
            self.counts = brackets[self.bracket]
            for trial in pending:
                trial.state, trial.note = "running", ""
            self._halve(pending, handles)
            if not any(t.scores for t in pending):
                break  # nothing more was affordable
            pending = [t for t in pending if t.state == "unfunded" and not t.scores]
            self.bracket += 1
        for trial in self.trials:
            handle = handles[trial.candidate.name]
            if trial.state == "complete":
                study.tell(handle, trial.scores[trial.rung])
            elif trial.state == "pruned" or (trial.state == "unfunded" and trial.scores):
                study.tell(handle, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(handle, state=optuna.trial.TrialState.FAIL)

    def _halve(self, alive: list[Trial], handles: dict[str, Any]) -> None:
        """One bracket of successive halving: each rung's scores reported to Optuna, then the best
        1/eta of them go on; those left at the last rung are complete."""
        for rung, pairs in enumerate(self.rungs):
            alive = self._admit(rung, pairs, alive)
            if not alive:
                break
            self._run_rung(rung, pairs, alive)
            scored = [t for t in alive if rung in t.scores]
            for trial in scored:
                handles[trial.candidate.name].report(
                    trial.scores[rung], step=self.settings.reduction_factor**rung
                )
            scored.sort(key=lambda t: -t.scores[rung])
            last = rung == len(self.rungs) - 1
            keep = len(scored) if last else max(1, math.ceil(len(scored) / self.settings.reduction_factor))
            for trial in scored[keep:]:
                trial.state, trial.note = "pruned", f"pruned after rung {rung + 1}"
            alive = scored[:keep]
            self.clock.save()
        for trial in alive:
            if trial.state == "running":
                trial.state = "complete"

    def rung_costs(self, trials: list[Trial]) -> tuple[float, list[float]]:
        """(the base model's dev score, a trial's mean cost at each rung), estimated seconds."""
        names = [t.candidate.name for t in trials]
        base, per_rung = 0.0, []
        for pairs in self.rungs:
            plan = build_plan(
                rung_config(self.template, self.data, trials, pairs, self.settings), self.run_dir
            )
            costs = trial_costs(plan, names, self.clock.rates)
            base = base or costs[BASE]
            per_rung.append(sum(costs[n] for n in names) / len(names) * self.clock.ratio)
        return base * self.clock.ratio, per_rung

    def allotment(self, trials: list[Trial]) -> list[int]:
        """How many recipes each rung can afford: the most at rung 1 whose halvings all fit in the
        time left (less the winner's training set), so the first rung cannot eat the later ones."""
        base, per_rung = self.rung_costs(trials)
        names = [t.candidate.name for t in trials]
        reserve = self.final_cost(names, mean=True) * self.clock.ratio if self.final_cost else 0.0
        left = self.clock.left - reserve - base
        eta = self.settings.reduction_factor
        best = 1
        for n in range(1, len(trials) + 1):
            if sum(math.ceil(n / eta**r) * cost for r, cost in enumerate(per_rung)) <= left:
                best = n
        return [math.ceil(best / eta**r) for r in range(len(self.rungs))]

    def _admit(self, rung: int, pairs: int, alive: list[Trial]) -> list[Trial]:
        """The rung's allotment of trials, best first, while their estimated cost fits what is left;
        the rest go unfunded."""
        plan = build_plan(rung_config(self.template, self.data, alive, pairs, self.settings), self.run_dir)
        for trial in alive:
            cell = next(c for c in plan.cells if c.source == trial.candidate.name)
            trial.corpus_reads = cell.corpus_reads
        costs = trial_costs(plan, [t.candidate.name for t in alive], self.clock.rates)
        # The winner is one of these: keep their mean cost of a full training set (all of it when
        # one is left), corrected like every estimate by what the rungs really took.
        names = [t.candidate.name for t in alive]
        reserve = self.final_cost(names, mean=True) * self.clock.ratio if self.final_cost else 0.0
        left = self.clock.left - reserve
        spend = costs[BASE] * self.clock.ratio
        admitted = []
        for trial in alive:
            cost = costs[trial.candidate.name] * self.clock.ratio
            if len(admitted) >= self.counts[rung]:
                trial.state = "unfunded"
                trial.note = f"not run: the budget buys {self.counts[rung]} recipe(s) at rung {rung + 1}"
            elif spend + cost <= left:
                admitted.append(trial)
                spend += cost
            else:
                trial.state = "unfunded"
                trial.note = (
                    f"not run at rung {rung + 1}: ~{cost / 60:.0f} min did not fit "
                    f"the {max(left, 0) / 60:.0f} min left"
                )
        self.say(
            (f"bracket {self.bracket + 1}, " if self.bracket else "")
            + f"rung {rung + 1}/{len(self.rungs)}: {len(admitted)} recipe(s) on {pairs} train pairs each, "
            f"~{spend / 60:.0f} min; budget left {max(self.clock.left, 0) / 60:.0f} "
            f"of {self.clock.budget / 60:.0f} min"
            + (f" ({reserve / 60:.0f} min kept for the winner's training set)" if reserve >= 30 else "")
        )
        self.log.append(
            {
                "bracket": self.bracket + 1,
                "rung": rung + 1,
                "pairs": pairs,
                "admitted": [t.candidate.name for t in admitted],
                "estimated_seconds": round(spend, 1),
                "left_seconds": round(self.clock.left, 1),
            }
        )
        return admitted

    def _run_rung(self, rung: int, pairs: int, trials: list[Trial]) -> None:
        from hardneg.experiment.runner import make_executor

        config = rung_config(self.template, self.data, trials, pairs, self.settings)
        plan = build_plan(config, self.run_dir, fetch=True)
        plan.describe().write(self.run_dir)
        executor = make_executor(self.executor, plan, self.console, self.show_progress)
        executor.deadline = self.clock.deadline()
        started = time.time()
        outcome = executor.run()
        took = time.time() - started
        if outcome.ran:  # what ran against its estimate (stages stopped by the deadline are not counted)
            self.clock.measure(took, self.clock.rates.total(outcome.ran))
        self.log[-1]["seconds"] = round(took, 1)
        scores = read_scores(plan, self.metric)
        self.base = scores.get(BASE, self.base)
        cells = {cell.source: cell for cell in plan.cells}
        by_output = {s.output: s for s in plan.stages}
        for trial in trials:
            name = trial.candidate.name
            if name in scores:
                trial.per_query[rung] = scores[name]
                trial.scores[rung] = sum(scores[name].values()) / max(1, len(scores[name]))
                continue
            stage = by_output[cells[name].evaluation]
            found = [
                outcome.failed[s.key] for s in ancestors(plan.stages, stage.key) if s.key in outcome.failed
            ]
            roots = [r for r in found if not r.startswith("needs ")]  # the stages' own reasons
            trial.state = "unfunded" if roots and all(r == BUDGET_SPENT for r in roots) else "failed"
            trial.note = f"rung {rung + 1}: {roots[0] if roots else 'no result'}"
