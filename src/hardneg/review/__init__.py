"""Human review of negatives: a Label Studio round trip (export a stratified sample, import the
labels back) and the agreement of people, the audit and the judge."""

from hardneg.core.lazy import lazy_names

_WHERE = {
    name: "hardneg.review.labelstudio"
    for name in (
        "export_review",
        "import_review",
        "read_labels",
        "review_report",
        "review_markdown",
        "labeling_config",
    )
}

__all__ = list(_WHERE)

__getattr__ = lazy_names(__name__, _WHERE)
