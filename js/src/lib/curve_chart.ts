// A small SVG line chart: several curves over the same x (one thick, the others thin), with
// axes, tick labels and axis captions set as text. Draws numbers computed in Python.
import { formatNumber, niceTicks } from "./scale";

const SVG = "http://www.w3.org/2000/svg";

export interface CurveChartOptions {
  x: ArrayLike<number>;
  /** curves[k][j] at x[j]; curve 0 is drawn thick (e.g. the mean), the others thin */
  curves: ArrayLike<number>[];
  width: number;
  height: number;
  xLabel?: string;
  yLabel?: string;
  /** y range; default [min(0, data), max(1, data)] */
  yRange?: [number, number];
  /** a dashed horizontal line (e.g. a pass threshold) */
  threshold?: number | null;
  /** draw curve 0 as dots (a scatter of y against x) instead of a line */
  scatter?: boolean;
}

/** Margins inside the SVG: left (y ticks), right, top, bottom (x ticks and caption). */
export const MARGIN = { left: 46, right: 8, top: 6, bottom: 30 };

/** The y range of a chart: [min(0, data), max(1, data)] over the finite values ("tight": [min, max]). */
export function yRangeOf(curves: ArrayLike<number>[], tight = false): [number, number] {
  let lo = tight ? Infinity : 0;
  let hi = tight ? -Infinity : 1;
  for (const c of curves) {
    for (let j = 0; j < c.length; j++) {
      const v = c[j];
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  if (!(hi >= lo)) return [0, 1];
  return hi > lo ? [lo, hi] : [lo - 0.5, hi + 0.5];
}

/** SVG "x,y" points of a curve in a chart of the given size (non-finite points skipped). */
export function curvePoints(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  width: number,
  height: number,
  xRange: [number, number],
  yRange: [number, number],
): string {
  const [x0, x1] = xRange;
  const [y0, y1] = yRange;
  const w = width - MARGIN.left - MARGIN.right;
  const hh = height - MARGIN.top - MARGIN.bottom;
  const pts: string[] = [];
  for (let j = 0; j < Math.min(x.length, y.length); j++) {
    if (!Number.isFinite(y[j]) || !Number.isFinite(x[j])) continue;
    const px = MARGIN.left + (x1 > x0 ? (x[j] - x0) / (x1 - x0) : 0.5) * w;
    const py = MARGIN.top + (y1 > y0 ? 1 - (y[j] - y0) / (y1 - y0) : 0.5) * hh;
    pts.push(`${px.toFixed(1)},${py.toFixed(1)}`);
  }
  return pts.join(" ");
}

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function text(x: number, y: number, s: string, anchor: string, extra: Record<string, string | number> = {}): SVGTextElement {
  const t = el("text", { x, y, "text-anchor": anchor, "font-size": 10, fill: "currentColor", ...extra });
  t.textContent = s;
  return t;
}

/** The chart as an <svg class="xw-curve-chart">; curve k is a polyline with data-curve="k". */
export function curveChart(opts: CurveChartOptions): SVGSVGElement {
  const { x, curves, width, height } = opts;
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "xw-curve-chart" });
  if (x.length < 1) return svg;
  let xMin = Infinity;
  let xMax = -Infinity;
  for (let j = 0; j < x.length; j++) {
    xMin = Math.min(xMin, x[j]);
    xMax = Math.max(xMax, x[j]);
  }
  const xr: [number, number] = [xMin, xMax];
  const yr = opts.yRange ?? yRangeOf(curves, Boolean(opts.scatter));
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const axis = { stroke: "currentColor", "stroke-opacity": 0.45, "stroke-width": 1 };
  svg.appendChild(el("line", { x1: left, y1: bottom, x2: right, y2: bottom, ...axis }));
  svg.appendChild(el("line", { x1: left, y1: top, x2: left, y2: bottom, ...axis }));
  const at = (vx: number, vy: number) => curvePoints([vx], [vy], width, height, xr, yr).split(",").map(Number);
  for (const v of niceTicks(xr[0], xr[1], 4)) {
    const [px] = at(v, yr[0]);
    svg.appendChild(el("line", { x1: px, y1: bottom, x2: px, y2: bottom + 3, ...axis }));
    svg.appendChild(text(px, bottom + 13, formatNumber(v), "middle", { class: "xw-curve-xtick" }));
  }
  for (const v of niceTicks(yr[0], yr[1], 4)) {
    const [, py] = at(xr[0], v);
    svg.appendChild(el("line", { x1: left - 3, y1: py, x2: left, y2: py, ...axis }));
    svg.appendChild(text(left - 5, py + 3, formatNumber(v), "end", { class: "xw-curve-ytick" }));
  }
  if (opts.threshold != null && Number.isFinite(opts.threshold)) {
    const [, py] = at(xr[0], opts.threshold);
    svg.appendChild(el("line", { x1: left, y1: py, x2: right, y2: py, stroke: "#c4122f", "stroke-dasharray": "4 3", "stroke-width": 1, class: "xw-curve-threshold" }));
  }
  if (opts.scatter) {
    const pts = curvePoints(x, curves[0] ?? [], width, height, xr, yr);
    for (const p of pts ? pts.split(" ") : []) {
      const [cx, cy] = p.split(",");
      svg.appendChild(el("circle", { cx, cy, r: 2, fill: "#2f6fdf", "fill-opacity": 0.55, class: "xw-curve-dot" }));
    }
  }
  // thin curves first, the thick one (curve 0) on top
  for (let k = opts.scatter ? -1 : curves.length - 1; k >= 0; k--) {
    const thick = k === 0;
    svg.appendChild(
      el("polyline", {
        points: curvePoints(x, curves[k], width, height, xr, yr),
        fill: "none",
        stroke: thick ? "#2f6fdf" : "currentColor",
        "stroke-opacity": thick ? 1 : 0.3,
        "stroke-width": thick ? 2 : 1,
        "data-curve": k,
      }),
    );
  }
  if (opts.xLabel) svg.appendChild(text((left + right) / 2, height - 3, opts.xLabel, "middle", { class: "xw-curve-xlabel" }));
  if (opts.yLabel) {
    svg.appendChild(text(-(top + bottom) / 2, 10, opts.yLabel, "middle", { transform: "rotate(-90)", class: "xw-curve-ylabel" }));
  }
  return svg;
}
