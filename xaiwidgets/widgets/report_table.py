"""`ReportTable`: a small text table (the classification report of a
:class:`~xaiwidgets.widgets.MetricsView`). Every cell is set as text in the browser, never
parsed as HTML. Clicking a body row sets ``selected_row`` and ``highlight`` to it (the view
shows that class's curves).
"""

from __future__ import annotations

from typing import Any

import traitlets

from ..explainers.classification import MetricsReport
from ._base import XaiWidget

REPORT_COLUMNS = ["class", "precision", "recall", "f1-score", "support"]


class ReportTable(XaiWidget):
    """A table of strings: ``columns`` (header), ``rows`` (clickable body rows), ``footer``
    (summary rows under a rule), ``highlight`` (index of a body row drawn highlighted, -1
    none), ``selected_row`` (the last clicked body row, -1 none), ``title``."""

    _bundle = "report_table"

    columns = traitlets.List(traitlets.Unicode(), help="Header cells.").tag(sync=True)
    rows = traitlets.List(traitlets.List(traitlets.Unicode()), help="Body rows.").tag(sync=True)
    footer = traitlets.List(traitlets.List(traitlets.Unicode()), help="Summary rows.").tag(
        sync=True
    )
    highlight = traitlets.Int(-1, min=-1, help="Body row drawn highlighted; -1 for none.").tag(
        sync=True
    )
    selected_row = traitlets.Int(-1, min=-1, help="Last clicked body row; -1 for none.").tag(
        sync=True
    )
    title = traitlets.Unicode("", help="Title above the table (text).").tag(sync=True)

    @classmethod
    def from_report(cls, report: MetricsReport, **kwargs: Any) -> ReportTable:
        """The classification report: one row per class, then accuracy, macro and weighted
        averages (3 decimals; support as integers)."""

        def fmt(row: dict[str, Any]) -> list[str]:
            return [
                str(row["class"]),
                f"{row['precision']:.3f}",
                f"{row['recall']:.3f}",
                f"{row['f1-score']:.3f}",
                str(int(row["support"])),
            ]

        n = len(report.y_true)
        footer = [["accuracy", "", "", f"{report.accuracy:.3f}", str(n)]]
        footer += [fmt(report.summary[key]) for key in ("macro avg", "weighted avg")]
        state: dict[str, Any] = {
            "columns": REPORT_COLUMNS,
            "rows": [fmt(r) for r in report.report],
            "footer": footer,
            "title": "Classification report",
        }
        state.update(kwargs)
        return cls(**state)
