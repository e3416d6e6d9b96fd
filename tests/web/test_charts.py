"""The charts' contract: the spec (bridge/web/charts.py) and the macro that writes a chart's figure,
definition and table (bridge/desk/templates/_chart.html), read back from the HTML."""
from __future__ import annotations

import json
import re
from html import unescape

import pytest

from bridge.desk.rendering import HERE
from bridge.web.charts import chart_spec, percent
from bridge.web.templates import template_environment


def test_a_spec_is_the_contracts_json():
    spec = chart_spec("bar", ["本期", "上期"], {"回访完成率": [40.0, None]}, unit="%")
    assert spec == {"type": "bar", "x": ["本期", "上期"], "unit": "%", "stack": False,
                    "series": [{"name": "回访完成率", "data": [40.0, None]}]}
    assert percent(0.4) == 40.0 and percent(2 / 3) == 66.7 and percent(None) is None
    with pytest.raises(ValueError):
        chart_spec("radar", [], {})
    with pytest.raises(ValueError):
        chart_spec("line", [], {}, unit="h")


def render(spec: dict, **values) -> str:
    env = template_environment(HERE / "templates")
    module = env.get_template("_chart.html").make_module({"_": lambda s: s, "duration": lambda s: f"{s:.0f} s"})
    return str(module.chart(spec, "完成率", definition="定义", x_title="指标", id="chart-test", **values))


def test_the_macro_writes_the_figure_its_definition_and_its_table():
    spec = chart_spec("line", ["周一", "周二's"], {"接通率": [87.5, None], "用时": [3, 4]}, unit="%")
    html = render(spec)
    data = re.search(r'<figure class="hb-chart-box" id="chart-test">\s*<div class="hb-chart" data-chart=\'([^\']*)\'',
                     html).group(1)
    assert json.loads(unescape(data)) == spec  # the quote in a label cannot end the attribute
    assert "<figcaption>完成率</figcaption>" in html and "定义" in html
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", html)
    assert cells == ["指标", "接通率", "用时", "周一", "87.5%", "3.0%", "周二&#39;s", "–", "4.0%"]
    seconds = render(chart_spec("bar", ["中位数"], {"时长": [90.0]}, unit="s"))
    assert "<td>90 s</td>" in seconds  # times through the page's duration
