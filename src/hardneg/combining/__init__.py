"""Negatives combined and filtered: merging sources, the false-negative and length filters, and the
scorers they share with the audit."""

from hardneg.core.lazy import lazy_names

__getattr__ = lazy_names(
    __name__,
    {
        "combine": "hardneg.combining.combine",
        "combine_files": "hardneg.combining.combine",
        "preset_config": "hardneg.combining.combine",
        "filter_triplets": "hardneg.combining.filtering",
        "load_text_scorer": "hardneg.combining.filtering",
    },
)
