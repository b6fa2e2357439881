// The portal's progressive enhancements, served by the gateway
// (/static/portal.js). Every page works without it.
"use strict";

// The SQL console: Ctrl+Enter (or Cmd+Enter) in the editor runs the query.
document.addEventListener("keydown", (event) => {
  const editor = event.target;
  if (editor instanceof HTMLTextAreaElement && editor.id === "sql"
      && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    editor.form.requestSubmit(editor.form.querySelector('button[value="table"]'));
  }
});

// The KPI dashboard: each <figure class="chart" data-chart="…"> becomes a
// uPlot chart (bundled as /static/vendor/uplot.js). The figures are also in
// the page's table, so nothing is lost without JavaScript.
const PALETTE = ["#0b5cad", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#be185d"];

function chartWidth(figure) {
  return Math.max(260, Math.floor(figure.getBoundingClientRect().width) - 16);
}

function drawChart(figure) {
  const spec = JSON.parse(figure.dataset.chart);
  const bars = spec.kind === "bars";
  const count = spec.series.length;
  const series = [{}].concat(spec.series.map((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const line = { label: s.label, stroke: colour, width: 2, spanGaps: false };
    if (!bars) {
      return line;
    }
    // Side by side: one bar centred, or two either side of the day.
    const align = count === 1 ? 0 : (i === 0 ? -1 : 1);
    return Object.assign(line, {
      width: 1,
      fill: colour + "cc",
      paths: uPlot.paths.bars({ size: [count === 1 ? 0.6 : 0.4, 60], align }),
      points: { show: false },
    });
  }));
  const options = {
    width: chartWidth(figure),
    height: 240,
    series,
    scales: { x: { time: true } },
    axes: [{}, { size: 70 }],
  };
  const data = [spec.x].concat(spec.series.map((s) => s.values));
  const plot = new uPlot(options, data, figure);
  window.portalCharts.push({ id: figure.id, series: count, plot });
}

document.addEventListener("DOMContentLoaded", () => {
  window.portalCharts = [];
  const figures = document.querySelectorAll("figure.chart[data-chart]");
  if (figures.length === 0 || typeof uPlot === "undefined") {
    return;
  }
  figures.forEach(drawChart);
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      for (const chart of window.portalCharts) {
        const figure = document.getElementById(chart.id);
        chart.plot.setSize({ width: chartWidth(figure), height: 240 });
      }
    }, 150);
  });
});
