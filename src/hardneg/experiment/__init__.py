"""The study runner: one TOML config -> a cached graph of stages -> a report."""

from hardneg.experiment.config import ExperimentConfig, load_experiment
from hardneg.experiment.runner import plan_experiment, run_experiment

__all__ = ["ExperimentConfig", "load_experiment", "plan_experiment", "run_experiment"]
