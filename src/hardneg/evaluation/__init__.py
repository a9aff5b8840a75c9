"""Retrieval evaluation: metrics (pytrec_eval) and the evaluate stage."""

from hardneg.evaluation.evaluate import EvaluationResult, evaluate
from hardneg.evaluation.metrics import evaluate_run, parse_metric

__all__ = ["EvaluationResult", "evaluate", "evaluate_run", "parse_metric"]
