// Small hand-written SVG line charts for the operations page (no library). Every point carries
// its series, day and value as data attributes and a tooltip, so what is drawn can be read back.
"use strict";

const RecOpsCharts = (() => {
  const { svg } = RecOps;
  const PALETTE = ["#2458d3", "#d9822b", "#1d7a46", "#8e44ad", "#b3261e", "#0f8b8d"];
  const HEIGHT = 200;
  const MARGIN = { left: 62, right: 22, top: 16, bottom: 30 };

  // 1, 2 or 5 times a power of ten, at least `value` (a round top for the y axis).
  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= value);
  }

  // lineChart({metric, title, days, series: [{name, color, values: {day: number}}], format, width}):
  // drawn `width` units wide, the width it is shown at, so its text keeps its size on a phone.
  function lineChart({ metric, title, days, series, format, width = 560 }) {
    const WIDTH = Math.max(260, Math.round(width));
    const plotW = WIDTH - MARGIN.left - MARGIN.right;
    const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
    const values = series.flatMap((s) => Object.values(s.values)).filter((v) => v !== null && v !== undefined);
    const top = niceCeiling(Math.max(0, ...values));
    const x = (i) => MARGIN.left + (days.length === 1 ? plotW / 2 : (plotW * i) / (days.length - 1));
    const y = (v) => MARGIN.top + plotH * (1 - v / top);
    const chart = svg("svg", {
      class: "chart", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title, "data-metric": metric,
    });
    for (const fraction of [0, 0.5, 1]) {
      const level = top * fraction;
      chart.append(
        svg("line", { class: "axis", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(level), y2: y(level) }),
        svg("text", { x: MARGIN.left - 6, y: y(level) + 4, "text-anchor": "end" }, format(level)),
      );
    }
    const every = Math.max(1, Math.ceil(days.length / Math.max(2, Math.floor(plotW / 56))));
    days.forEach((day, i) => {
      if (i % every === 0 || i === days.length - 1) {
        chart.append(svg("text", { x: x(i), y: HEIGHT - 12, "text-anchor": "middle" }, day.slice(5)));
      }
    });
    for (const s of series) {
      const points = days.map((day, i) => [day, i, s.values[day]]).filter(([, , v]) => v !== null && v !== undefined);
      if (points.length > 1) {
        chart.append(svg("polyline", {
          points: points.map(([, i, v]) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: s.color, "stroke-width": 2,
        }));
      }
      for (const [day, i, v] of points) {
        chart.append(svg("circle", {
          cx: x(i), cy: y(v), r: 4, fill: s.color, "data-series": s.name, "data-day": day, "data-value": v,
        }, svg("title", {}, `${s.name} · ${day} · ${title} ${format(v)}`)));
      }
      const last = points[points.length - 1];
      if (last) {
        chart.append(svg("text", {
          class: "value", x: Math.min(x(last[1]) + 6, WIDTH - MARGIN.right), y: y(last[2]) - 8,
          "text-anchor": x(last[1]) + 60 > WIDTH ? "end" : "start", "data-series": s.name,
        }, format(last[2])));
      }
    }
    return chart;
  }

  return { lineChart, PALETTE };
})();
