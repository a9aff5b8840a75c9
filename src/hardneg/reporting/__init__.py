"""What a run's report is made of: tables with intervals and paired tests (``report``), the audit
of negatives (``audit``), what generators delivered (``delivery``) and what stages cost (``costs``)."""

from hardneg.core.lazy import lazy_names

__getattr__ = lazy_names(
    __name__,
    {
        "write_report": "hardneg.reporting.report",
        "audit_file": "hardneg.reporting.audit",
        "costs": "hardneg.reporting.costs",
    },
)
