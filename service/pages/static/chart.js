// A small SVG line chart, written for these pages (no library): several
// series, validation beside training (dashed, in the same colour), a log
// y-axis when the values span more than two decades, axis ticks, vertical
// marks (the best epoch of early stopping) and a legend. It redraws at its
// container's width when that changes, so it fits a phone and a desktop.

import { clear, h, s } from "./dom.js";

/** Colours with enough contrast on white, in order of use. */
export const PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#1b7c83", "#57606a"];
/** Values spanning more than this ratio are drawn on a log axis (as plot.png). */
const LOG_SPAN = 100;

const specs = new WeakMap();
const widths = new WeakMap();
const observer = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const width = Math.floor(entry.contentRect.width);
    if (width > 0 && width !== widths.get(entry.target)) draw(entry.target);
  }
});

/**
 * Draw (or redraw) a chart in `container`:
 * {series: [{name, points: [[x, y|null], ...], color?, dashed?}],
 *  xLabel, yLabel, marks: [{x, label}], empty: "text when nothing to draw"}.
 */
export function lineChart(container, spec) {
  specs.set(container, spec);
  observer.observe(container);
  draw(container);
}

export function useLogScale(values) {
  const finite = values.filter(Number.isFinite);
  if (finite.some((v) => v < 0)) return false;
  const positive = finite.filter((v) => v > 0);
  return positive.length >= 2 && Math.max(...positive) / Math.min(...positive) > LOG_SPAN;
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * power;
}

function ticks(lo, hi, step) {
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function linearLabel(step) {
  const decimals = Math.min(8, Math.max(0, -Math.floor(Math.log10(step))));
  return (v) => {
    if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-4)) return v.toExponential(1);
    return v.toFixed(decimals);
  };
}

function powerLabel(k) {
  return k >= -3 && k <= 4 ? String(Number((10 ** k).toPrecision(1))) : `1e${k}`;
}

function draw(container) {
  const spec = specs.get(container);
  if (!spec) return;
  const width = Math.max(260, Math.floor(container.clientWidth || 600));
  widths.set(container, Math.floor(container.clientWidth));
  const height = Math.round(Math.min(340, Math.max(200, width * 0.42)));
  clear(container);

  const allY = spec.series.flatMap((series) => series.points.map((p) => p[1]));
  const log = spec.log ?? useLogScale(allY.filter((v) => v !== null));
  const usable = (y) => y !== null && Number.isFinite(y) && (!log || y > 0);
  const series = spec.series
    .map((one, i) => ({ ...one, color: one.color ?? PALETTE[i % PALETTE.length] }))
    .filter((one) => one.points.some((p) => usable(p[1])));
  if (!series.length) {
    container.append(h("p", { class: "empty", text: spec.empty ?? "Nothing to draw yet." }));
    return;
  }
  const xs = series.flatMap((one) => one.points.filter((p) => usable(p[1])).map((p) => p[0]));
  const ys = series.flatMap((one) => one.points.map((p) => p[1]).filter(usable));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  for (const mark of spec.marks ?? []) [x0, x1] = [Math.min(x0, mark.x), Math.max(x1, mark.x)];
  if (x1 === x0) x1 = x0 + 1;

  const margin = { top: 14, right: 14, bottom: 42, left: 64 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;

  let yTicks;
  let toY;
  let yLabel;
  if (log) {
    let k0 = Math.floor(Math.log10(Math.min(...ys)));
    let k1 = Math.ceil(Math.log10(Math.max(...ys)));
    if (k1 === k0) k1 += 1;
    const every = Math.max(1, Math.ceil((k1 - k0) / Math.max(2, Math.floor(plotH / 40))));
    yTicks = [];
    for (let k = k0; k <= k1; k += every) yTicks.push(k);
    k1 = Math.max(k1, yTicks[yTicks.length - 1]);
    toY = (v) => margin.top + plotH * (1 - (Math.log10(v) - k0) / (k1 - k0));
    yLabel = (k) => powerLabel(k);
    yTicks = yTicks.map((k) => ({ at: toY(10 ** k), text: yLabel(k) }));
  } else {
    let y0 = Math.min(...ys);
    let y1 = Math.max(...ys);
    if (y1 === y0) {
      const pad = Math.abs(y0) * 0.1 || 1;
      [y0, y1] = [y0 - pad, y1 + pad];
    }
    const step = niceStep(y1 - y0, Math.max(2, Math.floor(plotH / 45)));
    y0 = Math.floor(y0 / step) * step;
    y1 = Math.ceil(y1 / step) * step;
    toY = (v) => margin.top + plotH * (1 - (v - y0) / (y1 - y0));
    const label = linearLabel(step);
    yTicks = ticks(y0, y1, step).map((v) => ({ at: toY(v), text: label(v) }));
  }
  const toX = (v) => margin.left + (plotW * (v - x0)) / (x1 - x0);
  const xStep = Math.max(1, niceStep(x1 - x0, Math.max(2, Math.floor(plotW / 90))));
  const xLabelOf = linearLabel(xStep);
  const xTicks = ticks(x0, x1, xStep).map((v) => ({ at: toX(v), text: xLabelOf(v) }));

  const names = series.map((one) => one.name).join(", ");
  const svg = s("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${spec.title ?? "Line chart"}: ${names} against ${spec.xLabel ?? "x"}${log ? ", log scale" : ""}`,
  });
  const grid = s("g", { class: "grid" });
  const axes = s("g", { class: "axis" });
  for (const tick of yTicks) {
    grid.append(s("line", { x1: margin.left, x2: width - margin.right, y1: tick.at, y2: tick.at }));
    axes.append(s("text", { x: margin.left - 6, y: tick.at, "text-anchor": "end", "dominant-baseline": "middle", text: tick.text }));
  }
  for (const tick of xTicks) {
    grid.append(s("line", { x1: tick.at, x2: tick.at, y1: margin.top, y2: margin.top + plotH }));
    axes.append(s("text", { x: tick.at, y: margin.top + plotH + 16, "text-anchor": "middle", text: tick.text }));
  }
  axes.append(
    s("rect", { class: "frame", x: margin.left, y: margin.top, width: plotW, height: plotH }),
    s("text", { class: "title", x: margin.left + plotW / 2, y: height - 6, "text-anchor": "middle", text: spec.xLabel ?? "" }),
    s("text", {
      class: "title", x: 0, y: 0, "text-anchor": "middle",
      transform: `translate(14 ${margin.top + plotH / 2}) rotate(-90)`,
      text: `${spec.yLabel ?? ""}${log ? " (log)" : ""}`,
    }),
  );
  svg.append(grid, axes);

  (spec.marks ?? []).forEach((mark, i) => {
    // Each label on a row of its own, on the side of its line with room.
    const x = toX(mark.x);
    const right = x > margin.left + plotW * 0.6;
    svg.append(
      s("line", { class: "mark", x1: x, x2: x, y1: margin.top, y2: margin.top + plotH }),
      s("text", {
        class: "mark-label", x: right ? x - 4 : x + 4, y: margin.top + 12 + 14 * i,
        "text-anchor": right ? "end" : "start", text: mark.label,
      }),
    );
  });

  const lines = s("g", { class: "lines" });
  for (const one of series) {
    const points = [...one.points].sort((a, b) => a[0] - b[0]);
    let d = "";
    let pen = "M";
    let drawn = 0;
    let last = null;
    for (const [x, y] of points) {
      if (!usable(y)) {
        pen = "M"; // a gap where the value is missing (not finite)
        continue;
      }
      d += `${pen}${toX(x).toFixed(1)},${toY(y).toFixed(1)}`;
      pen = "L";
      drawn += 1;
      last = y;
    }
    const path = s("path", {
      class: `series${one.dashed ? " dashed" : ""}`, d, stroke: one.color, "data-name": one.name,
    }, s("title", { text: `${one.name}: last ${last}` }));
    lines.append(path);
    if (drawn === 1) {
      const [x, y] = points.find((p) => usable(p[1]));
      lines.append(s("circle", { class: "dot", cx: toX(x), cy: toY(y), r: 3, fill: one.color }));
    }
  }
  svg.append(lines);
  container.append(svg);

  const legend = h("ul", { class: "legend", "aria-label": "Legend" });
  for (const one of series) {
    legend.append(
      h("li", {},
        s("svg", { width: 28, height: 10, "aria-hidden": "true" },
          s("line", { class: `series${one.dashed ? " dashed" : ""}`, x1: 1, x2: 27, y1: 5, y2: 5, stroke: one.color })),
        h("span", { text: one.name })),
    );
  }
  container.append(legend);
}
