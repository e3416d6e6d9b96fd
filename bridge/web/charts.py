"""The charts' contract: the JSON spec a page writes into ``<div class="hb-chart" data-chart=...>``
(``bridge/desk/templates/_chart.html``) and ``/static/charts.js`` draws with Apache ECharts.

Labels and series names come already translated; ``unit`` is "" (counts), "%" (data are
percentages, 0 to 100) or "s" (seconds); ``None`` in the data is a gap (no value)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

Kind = Literal["bar", "line", "pie"]
Unit = Literal["", "%", "s"]


def chart_spec(kind: Kind, labels: Sequence[str], series: Mapping[str, Sequence[float | None]],
               unit: Unit = "", stack: bool = False) -> dict[str, Any]:
    """The spec of a chart: one series per ``series`` item (name -> a value per label)."""
    if kind not in ("bar", "line", "pie") or unit not in ("", "%", "s"):
        raise ValueError(f"no such chart: {kind!r} in {unit!r}")
    return {"type": kind, "x": list(labels), "unit": unit, "stack": stack,
            "series": [{"name": name, "data": list(values)} for name, values in series.items()]}


def percent(share: float | None) -> float | None:
    """A share (0 to 1) as a chart's percentage."""
    return None if share is None else round(share * 100, 1)


__all__ = ["chart_spec", "percent"]
