// ExplainerComparison: one column per explainer, one row per image (attribution cells in
// three overlays), a chooser of the explainers shown, and a score table that sorts by a click
// on a header; a click on a deletion, insertion or sanity score shows its curves. Python
// computes every number (maps, colour scales, kept pixels, scores, curves); this only draws.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { type NDArray, type SerializedArray, decodeArray } from "./lib/arrays";
import {
  type OverlayMode,
  attributionColorbar,
  bindPixelTooltip,
  blendRGBA,
  cellHeight,
  cellSizes,
  drawAttributionCell,
  drawImageCell,
  maskedRGBA,
  pixelRows,
  stackLength,
} from "./lib/attribution_cells";
import { segmented, slider } from "./lib/controls";
import { curveChart } from "./lib/curve_chart";
import { clear, h } from "./lib/dom";
import { type ImageRef, drawRGBA, greyLevels, imageRGBA } from "./lib/image";
import { cellLabel } from "./lib/labels";
import { batchSaver, saver } from "./lib/model";
import { formatNumber, formatSigned } from "./lib/scale";
import type { Tooltip } from "./lib/tooltip";
import { type ScoreRow, SCORE_COLUMNS, bestValues, nextSort, scoreText, sortRows } from "./lib/score_columns";
import { mountView } from "./lib/view";

export { type ScoreRow, nextSort, sortRows };

export interface Column {
  name: string;
  method: string;
  status: "done" | "running" | "waiting" | "error" | "cancelled";
  message?: string;
}

export interface CurveInfo {
  explainer?: string;
  metric?: string;
  x_label?: string;
  y_label?: string;
  area?: number;
  better?: string;
  threshold?: number;
  kind?: string;
}

export interface ComparisonModel {
  names: string[];
  shown: string[];
  overlay: string; // "heatmap" | "blend" | "mask" (OverlayMode)
  keep_fraction: number;
  scale_mode: string; // "column" | "cell"
  masker: string; // deletion / insertion masker, steps and sanity-check stages: set from Python
  steps: number;
  sanity_stages: number;
  sort_by: string;
  sort_descending: boolean;
  curve: { explainer?: string; metric?: string };
  cell_size: number;
  title: string;
  images: SerializedArray | null;
  row_titles: string[];
  columns: Column[];
  values: SerializedArray | null;
  scales: SerializedArray | null;
  keep: SerializedArray | null;
  scores: ScoreRow[];
  curve_x: SerializedArray | null;
  curve_y: SerializedArray | null;
  curve_info: CurveInfo;
  error: string;
  progress: number;
}

const CSS = `
.xw-cmp-chooser { display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; margin: 0 0 6px; font-size: 11px; }
.xw-cmp-chooser label { display: inline-flex; gap: 3px; align-items: center; cursor: pointer; }
.xw-cmp-grid { display: grid; column-gap: 6px; row-gap: var(--xw-row-gap); align-items: start; }
.xw-cmp-head { font-weight: 600; font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  border-bottom: 2px solid rgba(127,127,127,.3); padding-bottom: 2px; }
.xw-cmp-cell { display: flex; flex-direction: column; }
.xw-cmp-row-title { text-align: left; overflow: visible; font-weight: 600; }
.xw-cmp-canvas { display: block; image-rendering: pixelated; cursor: crosshair; background: #fff;
  box-shadow: 0 0 0 1px rgba(127,127,127,.25); }
.xw-cmp-placeholder { box-sizing: border-box; display: flex; align-items: center; justify-content: center; text-align: center;
  padding: 4px; border: 1px dashed rgba(127,127,127,.6); border-radius: 3px; font-size: 10px; line-height: 1.3;
  color: var(--jp-ui-font-color2, #59636e); overflow: hidden; overflow-wrap: anywhere; }
.xw-cmp-placeholder[data-status="error"] { color: #86181d; border-color: #e3a5a5; background: #fdf3f3; }
.xw-cmp-scores-caption { margin-top: 10px; font-size: 11px; color: var(--jp-ui-font-color2, #59636e); }
.xw-cmp-scores { margin-top: 3px; border-collapse: collapse; font-size: 11px; font-variant-numeric: tabular-nums; }
.xw-cmp-scores th, .xw-cmp-scores td { padding: 2px 10px 2px 0; text-align: left; white-space: nowrap; }
.xw-cmp-scores th { font-weight: 500; color: var(--jp-ui-font-color2, #59636e); border-bottom: 1px solid rgba(127,127,127,.35); cursor: pointer; user-select: none; }
.xw-cmp-scores th[aria-sort="ascending"]::after { content: " ▲"; }
.xw-cmp-scores th[aria-sort="descending"]::after { content: " ▼"; }
.xw-cmp-score { border: none; background: transparent; color: inherit; font: inherit; padding: 0 2px; cursor: pointer;
  text-decoration: underline dotted; }
.xw-cmp-score[aria-pressed="true"] { background: rgba(47,111,223,.16); border-radius: 3px; }
.xw-cmp-best { font-weight: 700; }
.xw-cmp-pass { color: #17803a; }
.xw-cmp-fail { color: #c4122f; font-weight: 600; }
.xw-cmp-curve { margin-top: 8px; }
.xw-cmp-curve-title { font-size: 11px; font-weight: 600; margin-bottom: 2px; }
`;

// ---------------------------------------------------------------------------- decoding
interface Decoded {
  e: number;
  n: number;
  h: number;
  w: number;
  c: number;
  images: NDArray;
  values: NDArray | null;
  scales: NDArray | null;
  keep: NDArray | null;
}

export function decode(model: AnyModel<ComparisonModel>): Decoded | null {
  const images = decodeArray(model.get("images"));
  if (!images) return null;
  if (images.shape.length !== 4) throw new Error(`images: expected (n, h, w, c), got [${images.shape}]`);
  const [n, hh, w, c] = images.shape;
  const values = decodeArray(model.get("values"));
  const e = values ? values.shape[0] : 0;
  const check = (name: string, a: NDArray | null, shape: number[]) => {
    if (a && (a.shape.length !== shape.length || a.shape.some((s, k) => s !== shape[k]))) {
      throw new Error(`${name}: expected shape (${shape.join(", ")}), got [${a.shape.join(", ")}]`);
    }
    return a;
  };
  check("values", values, [e, n, hh, w]);
  const scales = check("scales", decodeArray(model.get("scales")), [e, n]);
  const keep = check("keep", decodeArray(model.get("keep")), [e, n, hh, w]);
  return { e, n, h: hh, w, c, images, values, scales, keep };
}

// ---------------------------------------------------------------------------- cells
function drawCells(model: AnyModel<ComparisonModel>, body: HTMLElement, tooltip: Tooltip): void {
  clear(body);
  const d = decode(model);
  if (!d) return;
  const columns = model.get("columns") ?? [];
  const titles = model.get("row_titles") ?? [];
  const mode = (["heatmap", "blend", "mask"].includes(model.get("overlay")) ? model.get("overlay") : "heatmap") as OverlayMode;
  const cell = Math.max(16, Math.round(Number(model.get("cell_size")) || 96));
  const cellH = cellHeight(cell, d.h, d.w);
  const sizes = cellSizes(body);
  const e = Math.min(d.e, columns.length);
  const grid = h("div", { className: "xw-cmp-grid", attrs: { "data-overlay": mode } });
  // the image column is as wide as its row titles ("true 4 · 8 0.93 ✗"), never cut
  grid.style.gridTemplateColumns = `minmax(${cell}px, max-content) repeat(${e}, ${cell}px) auto`;
  const put = (node: HTMLElement, row: number | string, col: number | string) => {
    node.style.gridRow = String(row);
    node.style.gridColumn = String(col);
    grid.appendChild(node);
  };
  put(h("div", { className: "xw-cmp-head", text: "image" }), 1, 1);
  columns.slice(0, e).forEach((col, k) => {
    const title = `${col.name} (${col.method})`;
    put(h("div", { className: "xw-cmp-head", text: col.name, title, attrs: { "data-col": String(k) } }), 1, k + 2);
  });
  const size = d.h * d.w;
  for (let i = 0; i < d.n; i++) {
    const img: ImageRef = { data: d.images.data, offset: i * size * d.c, h: d.h, w: d.w, c: d.c };
    const title = titles[i] ?? `image ${i}`;
    const canvas = h("canvas", { className: "xw-cmp-canvas", attrs: { "data-row": String(i), "data-col": "image" } });
    drawImageCell(canvas, img, cell, cellH);
    bindPixelTooltip(canvas, tooltip, d.w, d.h, (x, y) => ({ rows: pixelRows(img, x, y), title }));
    put(h("div", { className: "xw-cmp-cell" }, [cellLabel(title, null, "xw-label xw-cmp-row-title"), canvas]), i + 2, 1);
    const grey = greyLevels(img);
    const rgba = mode === "heatmap" ? null : imageRGBA(img);
    for (let k = 0; k < e; k++) {
      const col = columns[k];
      const attrs = { "data-row": String(i), "data-col": String(k), "data-explainer": col.name };
      let node: HTMLElement;
      if (col.status === "done" && d.values && d.scales) {
        const cv = h("canvas", { className: "xw-cmp-canvas", attrs });
        const values = { data: d.values.data, offset: (k * d.n + i) * size, stride: 1 };
        const scale = d.scales.data[k * d.n + i];
        if (mode === "heatmap") drawAttributionCell(cv, values, grey, scale, d.w, d.h, cell, cellH);
        else if (mode === "blend") drawRGBA(cv, blendRGBA(values, rgba!, scale), d.w, d.h, cell, cellH);
        else if (d.keep) drawRGBA(cv, maskedRGBA(rgba!, d.keep.data, (k * d.n + i) * size), d.w, d.h, cell, cellH);
        bindPixelTooltip(cv, tooltip, d.w, d.h, (x, y) => {
          const rows = pixelRows(img, x, y);
          rows.push(["attribution", formatSigned(values.data[values.offset + y * d.w + x])]);
          rows.push(["colour scale", `±${formatNumber(scale)}`]);
          if (mode === "mask" && d.keep) rows.push(["kept", d.keep.data[(k * d.n + i) * size + y * d.w + x] ? "yes" : "no"]);
          return { rows, title: `${col.name} · ${title}` };
        });
        node = cv;
      } else {
        const text =
          col.status === "error" ? col.message || "failed" : col.status === "running" ? "computing…" : col.status === "waiting" ? "queued" : "not computed";
        node = h("div", {
          className: "xw-cmp-placeholder",
          text,
          title: text,
          style: { width: `${cell}px`, height: `${cellH}px` },
          attrs: { ...attrs, "data-status": col.status },
        });
      }
      put(h("div", { className: "xw-cmp-cell" }, [h("div", { className: "xw-label" }), node]), i + 2, k + 2);
    }
  }
  if (e > 0 && mode !== "mask") {
    const per = model.get("scale_mode") === "cell" ? "its cell" : "its column";
    const bar = attributionColorbar(1, stackLength(d.n, cellH, sizes), `attribution ÷ scale of ${per}`, {
      top: sizes.labelHeight,
      className: "xw-cmp-cbar",
    });
    put(bar, `2 / span ${d.n}`, e + 2);
  }
  body.appendChild(grid);
}

// ---------------------------------------------------------------------------- scores
function drawScores(model: AnyModel<ComparisonModel>, holder: HTMLElement): void {
  clear(holder);
  const rows = model.get("scores") ?? [];
  if (!rows.length) return;
  const sortBy = model.get("sort_by") ?? "";
  const desc = Boolean(model.get("sort_descending"));
  const curve = model.get("curve") ?? {};
  const best = bestValues(rows);
  const save = batchSaver(model);
  const head = h("tr", {}, [h("th", { text: "explainer", attrs: { "data-key": "name" } })]);
  for (const col of SCORE_COLUMNS) {
    const th = h("th", { text: col.text, title: `${col.title}. Click to sort.`, attrs: { "data-key": col.key } });
    if (sortBy === col.key) th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    th.addEventListener("click", () => {
      const [key, d] = nextSort(model.get("sort_by") ?? "", Boolean(model.get("sort_descending")), col.key);
      save({ sort_by: key, sort_descending: d });
    });
    head.appendChild(th);
  }
  head.appendChild(h("th", { text: "time", attrs: { "data-key": "seconds" } }));
  const tbody = h("tbody");
  for (const row of sortRows(rows, sortBy, desc)) {
    const tr = h("tr", { attrs: { "data-explainer": row.name } }, [h("td", { text: row.name })]);
    for (const col of SCORE_COLUMNS) {
      const text = scoreText(row, col.key);
      const td = h("td", { attrs: { "data-key": col.key } });
      const v = row[col.key];
      let cls = best[col.key] !== undefined && v === best[col.key] ? "xw-cmp-best" : "";
      if (col.key === "sanity" && row.sanity !== null) cls = row.sanity ? "xw-cmp-pass" : "xw-cmp-fail";
      let title = col.title;
      if (col.key === "sanity") {
        title = row.sanity_similarity != null ? `similarity ${formatNumber(row.sanity_similarity)} · ${row.sanity_note}` : row.sanity_note;
      }
      if (col.curve && text !== "—" && text !== "n/a") {
        const pressed = curve.explainer === row.name && curve.metric === col.key;
        const b = h("button", {
          className: `xw-cmp-score ${cls}`.trim(),
          text,
          title: `${title}. Click to show the curves.`,
          attrs: { type: "button", "data-metric": col.key, "aria-pressed": String(pressed) },
        });
        b.addEventListener("click", () => save({ curve: pressed ? {} : { explainer: row.name, metric: col.key } }));
        td.appendChild(b);
      } else {
        td.appendChild(h("span", { className: cls, text, title }));
      }
      tr.appendChild(td);
    }
    tr.appendChild(h("td", { text: `${row.seconds.toFixed(1)} s` }));
    tbody.appendChild(tr);
  }
  const stages = Number(model.get("sanity_stages")) || 0;
  const caption =
    `Means over the images. Deletion and insertion hide pixels with ${model.get("masker")} in ${model.get("steps")} steps; ` +
    (stages > 0 ? `the sanity check redraws the layers in ${stages} stages.` : "no sanity check (sanity_stages=0).") +
    " Click a header to sort, a score to see its curves.";
  holder.appendChild(h("div", { className: "xw-cmp-scores-caption", text: caption }));
  holder.appendChild(h("table", { className: "xw-cmp-scores" }, [h("thead", {}, [head]), tbody]));
}

const METRIC_TEXT: Record<string, string> = {
  deletion: "deletion curve",
  insertion: "insertion curve",
  sanity: "sanity check",
  mufidelity: "MuFidelity",
};

function drawCurve(model: AnyModel<ComparisonModel>, holder: HTMLElement): void {
  clear(holder);
  const x = decodeArray(model.get("curve_x"));
  const y = decodeArray(model.get("curve_y"));
  const info = model.get("curve_info") ?? {};
  if (!x || !y || y.shape.length !== 2 || y.shape[1] !== x.shape[0]) return;
  // a scatter's x is not sorted: the chart spans its extent, dots need no order
  const s = x.shape[0];
  const curves = Array.from({ length: y.shape[0] }, (_, k) => y.data.subarray(k * s, (k + 1) * s));
  const what = METRIC_TEXT[info.metric ?? ""] ?? info.metric ?? "";
  const scatter = info.kind === "scatter";
  const summary = info.metric === "sanity" ? "similarity with every layer redrawn" : scatter ? "correlation" : "area";
  const shows = scatter ? "each dot a random pixel subset of an image" : "mean (thick) and each image";
  const value = info.area == null ? "—" : formatNumber(info.area);
  const title = `${info.explainer ?? ""} · ${what} · ${summary} ${value} (${info.better ?? ""} is better) · ${shows}`;
  const chart = curveChart({
    x: x.data,
    curves,
    width: 360,
    height: 180,
    xLabel: info.x_label,
    yLabel: info.y_label,
    yRange: info.metric === "sanity" ? [-1, 1] : undefined,
    threshold: info.metric === "sanity" ? (info.threshold ?? null) : null,
    scatter,
  });
  holder.appendChild(
    h("div", { className: "xw-cmp-curve", attrs: { "data-metric": info.metric ?? "", "data-explainer": info.explainer ?? "" } }, [
      h("div", { className: "xw-cmp-curve-title", text: title }),
      chart as unknown as HTMLElement,
    ]),
  );
}

// ---------------------------------------------------------------------------- controls
function buildControls(model: AnyModel<ComparisonModel>): [HTMLElement, () => void] {
  const save = saver(model);
  const chooser = h("div", { className: "xw-cmp-chooser", attrs: { role: "group", "aria-label": "explainers shown" } });
  const overlay = segmented(
    "overlay",
    [
      { value: "heatmap", text: "heat map", title: "the attribution over a faint copy of the image" },
      { value: "blend", text: "blended", title: "the attribution blended over the image" },
      { value: "mask", text: "masked", title: "the image keeping only its top-attributed pixels" },
    ],
    model.get("overlay"),
    (v) => save("overlay", v as string),
  );
  const keep = slider("keep", 0.05, 1, 0.05, model.get("keep_fraction"), (v) => save("keep_fraction", v), (v) => `${Math.round(v * 100)}%`, true);
  const scale = segmented(
    "scale",
    [
      { value: "column", text: "per explainer", title: "one colour scale per explainer column" },
      { value: "cell", text: "per cell", title: "one colour scale per cell" },
    ],
    model.get("scale_mode"),
    (v) => save("scale_mode", v as string),
  );
  const row = h("div", { className: "xw-controls" }, [overlay.el, keep.el, scale.el]);
  const sync = () => {
    clear(chooser);
    chooser.appendChild(h("span", { className: "xw-control-label", text: "explainers" }));
    const names = model.get("names") ?? [];
    const shown = model.get("shown") ?? [];
    for (const name of names) {
      const input = h("input", { attrs: { type: "checkbox", "data-explainer": name } });
      input.checked = shown.includes(name);
      input.addEventListener("change", () => {
        const now = new Set(model.get("shown") ?? []);
        if (input.checked) now.add(name);
        else now.delete(name);
        save("shown", names.filter((x) => now.has(x)));
      });
      chooser.appendChild(h("label", {}, [input, h("span", { text: name })]));
    }
    overlay.set(model.get("overlay"));
    keep.set(model.get("keep_fraction"));
    keep.el.style.display = model.get("overlay") === "mask" ? "" : "none";
    scale.set(model.get("scale_mode"));
  };
  sync();
  return [h("div", {}, [chooser, row]), sync];
}

// ---------------------------------------------------------------------------- render
const CONTROLS = ["names", "shown", "overlay", "keep_fraction", "scale_mode"];
const CELLS = ["images", "row_titles", "columns", "values", "scales", "keep", "overlay", "scale_mode", "cell_size"];
const SCORES = ["scores", "sort_by", "sort_descending", "curve", "masker", "steps", "sanity_stages"];
const CURVE = ["curve_x", "curve_y", "curve_info"];

function render({ model, el }: Pick<RenderProps<ComparisonModel>, "model" | "el">): () => void {
  const m = model as unknown as AnyModel<ComparisonModel>;
  return mountView(model as unknown as AnyModel, el, {
    className: "xw-explainer-comparison",
    styles: [["explainer-comparison", CSS]],
    build: (view) => {
      const [controls, syncControls] = buildControls(m);
      const body = h("div", { className: "xw-cmp-body" });
      const scores = h("div", { className: "xw-cmp-score-holder" });
      const curve = h("div", { className: "xw-cmp-curve-holder" });
      return {
        children: [view.title, controls, view.status!.el, body, scores, curve],
        body,
        draw: () => drawCells(m, body, view.tooltip),
        bindings: [
          [CONTROLS, syncControls],
          [CELLS, view.redraw, true],
          [SCORES, () => drawScores(m, scores), true],
          [CURVE, () => drawCurve(m, curve), true],
        ],
      };
    },
  });
}

export default { render };
