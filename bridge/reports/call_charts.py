"""The call figures' two charts as the charts contract's specs (docs: the dashboard's renderer draws
``.hb-chart`` elements from them): calls by hour of the day and by day, stacked per disposition,
labels already translated."""
from __future__ import annotations

from typing import Any

from bridge.i18n import N_
from bridge.reports.labels import DISPOSITION_LABELS

HOUR_LABEL = N_("%(hour)02d:00")


def _series(rows: list[dict[str, Any]], _) -> list[dict[str, Any]]:
    """One series per disposition that occurs (the stack's parts)."""
    shown = [d for d in DISPOSITION_LABELS if any(row["by_disposition"].get(d) for row in rows)]
    return [{"name": _(DISPOSITION_LABELS[d]), "data": [row["by_disposition"].get(d, 0) for row in rows]}
            for d in shown]


def charts(figures: dict[str, Any], _) -> dict[str, dict[str, Any]]:
    """{"by_hour": spec, "by_day": spec}; empty for an operator's own figures (no volumes)."""
    if not figures["by_hour"]:
        return {}
    return {"by_hour": {"type": "bar", "x": [_(HOUR_LABEL) % {"hour": row["hour"]} for row in figures["by_hour"]],
                        "series": _series(figures["by_hour"], _), "unit": "", "stack": True},
            "by_day": {"type": "bar", "x": [row["day"].strftime("%m-%d") for row in figures["by_day"]],
                       "series": _series(figures["by_day"], _), "unit": "", "stack": True}}
