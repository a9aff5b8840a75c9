"""The study runner: one TOML config -> a cached graph of stages -> a report."""

from hardneg.experiment.config import load_experiment
from hardneg.experiment.runner import plan_experiment, run_experiment
from hardneg.settings.experiment import ExperimentSettings

__all__ = ["ExperimentSettings", "load_experiment", "plan_experiment", "run_experiment"]
