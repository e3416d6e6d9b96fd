/* The pages' charts: every .hb-chart[data-chart] element drawn by Apache ECharts (vendored at
   /static/vendor/echarts/ by scripts/vendor-echarts, loaded only on a page with a chart).
   The spec (the charts' contract, bridge/desk/templates/_chart.html writes it):
   {"type": "bar"|"line"|"pie", "x": [labels], "series": [{"name": ..., "data": [numbers or null]}],
    "unit": ""|"%"|"s", "stack": false}; "%" data are percentages (0 to 100), "s" seconds.
   Every chart's figures are also in the table after it, so a page without the library loses
   nothing.  Drawn again after htmx swaps, and resized with the window. */
(function () {
  "use strict";
  var LIBRARY = "/static/vendor/echarts/echarts.min.js";
  var loading = null;

  function library() {
    if (window.echarts) return Promise.resolve(window.echarts);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = LIBRARY;
        script.onload = function () { resolve(window.echarts); };
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  function chinese() { return (document.documentElement.lang || "").toLowerCase().indexOf("zh") === 0; }

  function number(value) {
    return Number(value).toLocaleString(document.documentElement.lang || undefined, { maximumFractionDigits: 1 });
  }

  // A value with its unit: seconds read as seconds, minutes or hours, whichever is shortest.
  function withUnit(value, unit) {
    if (value === null || value === undefined) return "–";
    var zh = chinese();
    if (unit === "s") {
      if (Math.abs(value) >= 3600) return number(value / 3600) + (zh ? " 小时" : " h");
      if (Math.abs(value) >= 60) return number(value / 60) + (zh ? " 分钟" : " min");
      return number(value) + (zh ? " 秒" : " s");
    }
    return number(value) + (unit || "");
  }

  function option(spec) {
    var unit = spec.unit || "";
    var shown = function (value) { return withUnit(value, unit); };
    var series = spec.series || [];
    if (spec.type === "pie") {
      // All zero (nothing graded yet): no equal slices of nothing, but a word that there is none.
      var total = series.reduce(function (sum, s) {
        return sum + s.data.reduce(function (t, v) { return t + (v || 0); }, 0);
      }, 0);
      return {
        title: total ? undefined : { text: chinese() ? "暂无数据" : "No data yet", left: "center", top: "38%",
                                     textStyle: { fontSize: 14, fontWeight: "normal", color: "#666" } },
        tooltip: { trigger: "item", valueFormatter: shown },
        legend: { type: "scroll", bottom: 0 },
        series: series.map(function (s) {
          return { name: s.name, type: "pie", radius: ["30%", "60%"], center: ["50%", "45%"], stillShowZeroSum: false,
                   label: { show: !!total, formatter: "{b}: {d}%" }, labelLine: { show: !!total },
                   data: spec.x.map(function (label, i) { return { name: label, value: s.data[i] }; }) };
        })
      };
    }
    return {
      tooltip: { trigger: "axis", valueFormatter: shown },
      legend: { type: "scroll", top: 0 },
      grid: { left: 16, right: 16, top: 40, bottom: 16 },
      xAxis: { type: "category", data: spec.x },
      yAxis: { type: "value", axisLabel: { formatter: shown } },
      series: series.map(function (s) {
        return { name: s.name, type: spec.type === "line" ? "line" : "bar", data: s.data,
                 stack: spec.stack ? "total" : undefined, connectNulls: false };
      })
    };
  }

  function draw(echarts, el) {
    var spec;
    try { spec = JSON.parse(el.dataset.chart); } catch (e) { return; }
    el.dataset.drawn = "echarts";  // gives the box its height (desk.css) before ECharts measures it
    var chart = echarts.getInstanceByDom(el) ||
      echarts.init(el, null, { renderer: "svg", locale: chinese() ? "ZH" : "EN" });
    // no animation: a live reload would grow every bar again from nothing
    chart.setOption(Object.assign({ animation: false }, option(spec)), true);
  }

  function charts(root) {
    var found = Array.prototype.slice.call((root || document).querySelectorAll(".hb-chart[data-chart]"));
    if (root && root.matches && root.matches(".hb-chart[data-chart]")) found.push(root);
    return found;
  }

  function drawAll(root) {
    var found = charts(root);
    if (!found.length) return;
    library().then(function (echarts) {
      found.forEach(function (el) { if (el.isConnected) draw(echarts, el); });
    }, function () { /* no library: the tables carry the figures */ });
  }

  function each(callback) {
    if (!window.echarts) return;
    charts(document).forEach(function (el) {
      var chart = window.echarts.getInstanceByDom(el);
      if (chart) callback(chart);
    });
  }

  document.addEventListener("htmx:beforeSwap", function (event) {  // the old charts go with their elements
    if (!window.echarts || !event.detail.target) return;
    charts(event.detail.target).forEach(function (el) { window.echarts.dispose(el); });
  });
  document.addEventListener("htmx:afterSwap", function () { drawAll(document); });
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(function () { each(function (chart) { chart.resize(); }); }, 150);
  });
  window.hbCharts = { draw: drawAll, option: option };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  else drawAll(document);
})();
