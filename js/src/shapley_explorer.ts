// ShapleyExplorer: settings of a Partition / Permutation explainer (masker, algorithm,
// max_evals, top-k, images) that re-run it in the kernel, and the results drawn as attribution
// grids with ranked label rows, one panel per masker, each with its deletion area.
// Everything drawn comes from traits, so a static export shows the last result.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { type NDArray, type SerializedArray, decodeArray } from "./lib/arrays";
import {
  attributionColorbar,
  bindPixelTooltip,
  cellHeight,
  cellSizes,
  drawAttributionCell,
  drawImageCell,
  pixelRows,
  stackLength,
} from "./lib/attribution_cells";
import { checkbox, segmented } from "./lib/controls";
import { clear, h } from "./lib/dom";
import { type ImageRef, greyLevels } from "./lib/image";
import { numberField } from "./lib/inputs";
import { maskerControl, parseMasker } from "./lib/masker_control";
import { cellLabel, labelText } from "./lib/labels";
import { PICKER_CSS, type PickItem, imagePicker, pickTitle } from "./lib/picker";
import { formatNumber, formatSigned, maxAbs } from "./lib/scale";
import { SCORE_CSS, type ScoreRow, scoreTable } from "./lib/score_table";
import { sparkline } from "./lib/sparkline";
import type { Tooltip } from "./lib/tooltip";
import { mountView } from "./lib/view";
import { batchSaver } from "./lib/model";
import { PAGER_CSS, buildPager } from "./shapley/pager";

export interface PanelInfo {
  masker: string;
  algorithm: string;
  max_evals: number;
  area: number;
  image_areas: number[];
  area_masker: string;
  curve: number[];
  seconds: number;
}


export interface ExplorerModel {
  masker: string;
  compare: string;
  algorithm: string;
  max_evals: number;
  top_k: number;
  indices: number[];
  deletion_masker: string;
  cell_size: number;
  scale_mode: string;
  candidates: SerializedArray | null;
  candidate_info: PickItem[];
  shown_images: SerializedArray | null;
  row_info: PickItem[];
  values: SerializedArray | null;
  output_labels: string[][][];
  output_probabilities: SerializedArray | null;
  panels: PanelInfo[];
  scores: ScoreRow[];
  stale: boolean;
  message: string;
  image_shape: number[];
  page: number;
  pool_size: number;
  has_next_page: boolean;
  error: string;
  progress: number;
}

const DEFAULT_EVALS: Record<string, number> = { partition: 500, permutation: 1600 };

const CSS = `
.xw-se-controls { display: flex; flex-direction: column; gap: 6px; margin: 0 0 8px; }
.xw-se-controls .xw-controls { margin: 0; }
.xw-number { font: inherit; font-size: 11px; padding: 1px 3px; }
.xw-se-message { min-height: 14px; margin: 0 0 4px; font-size: 11px; color: var(--jp-ui-font-color2, #59636e); }
.xw-se-body { transition: opacity .15s; }
.xw-se-body.xw-se-stale { opacity: .38; }
.xw-se-grid { display: grid; column-gap: 4px; row-gap: var(--xw-row-gap); align-items: start; }
.xw-se-cell { display: flex; flex-direction: column; }
.xw-se-canvas { display: block; image-rendering: pixelated; cursor: crosshair; background: #fff;
  box-shadow: 0 0 0 1px rgba(127,127,127,.25); }
.xw-se-head { min-width: 0; padding: 0 0 4px; border-bottom: 2px solid rgba(127,127,127,.3); align-self: end; }
.xw-se-head.xw-se-best { border-bottom-color: #1a7f37; }
.xw-se-head-top, .xw-se-area { display: flex; flex-wrap: wrap; align-items: center; column-gap: 6px; row-gap: 1px; }
.xw-se-head-top > *, .xw-se-area > * { white-space: nowrap; }
.xw-se-masker { font-weight: 600; font-size: 12px; overflow-wrap: anywhere; white-space: normal !important; }
.xw-se-meta { color: var(--jp-ui-font-color2, #59636e); font-size: 11px; }
.xw-se-area { font-size: 11px; margin-top: 2px; }
.xw-se-area-value { font-weight: 600; font-variant-numeric: tabular-nums; }
.xw-se-best-tag { color: #1a7f37; font-weight: 600; }
.xw-se-image-label { font-weight: 600; }
.xw-se-image-label.xw-se-wrong { color: #b42318; }
.xw-se-cbar { padding-left: 6px; }
.xw-se-empty { padding: 16px 4px; color: var(--jp-ui-font-color2, #59636e); }
.xw-shapley-explorer { padding-right: 8px; }
`;

// ---------------------------------------------------------------------------- controls
function buildControls(model: AnyModel<ExplorerModel>): [HTMLElement, () => void] {
  const save = batchSaver(model);
  const [ih, iw] = model.get("image_shape") ?? [28, 28];
  const maxSize = Math.max(ih ?? 1, iw ?? 1);
  const algorithm = segmented(
    "explainer",
    [
      { value: "partition", text: "partition", title: "Owen values over a hierarchy of image regions" },
      { value: "permutation", text: "permutation", title: "antithetic permutation sampling" },
    ],
    model.get("algorithm"),
    (v) => {
      const changes: Record<string, unknown> = { algorithm: v };
      if (model.get("max_evals") === DEFAULT_EVALS[model.get("algorithm")]) changes.max_evals = DEFAULT_EVALS[v];
      save(changes);
    },
  );
  const evals = numberField("max evals", model.get("max_evals"), (v) => save({ max_evals: v }), { min: 4, step: 100, integer: true, width: "5.5em" });
  const topk = numberField("top-k", model.get("top_k"), (v) => save({ top_k: v }), { min: 1, step: 1, integer: true, width: "3.5em" });
  const scale = segmented(
    "scale",
    [
      { value: "grid", text: "grid", title: "one colour scale for every panel and row" },
      { value: "row", text: "per row", title: "one colour scale per image" },
    ],
    model.get("scale_mode"),
    (v) => save({ scale_mode: v }),
  );
  const first = maskerControl("masker", maxSize, (spec) => save({ masker: spec }));
  const second = maskerControl("masker B", maxSize, (spec) => save({ compare: spec }));
  const side = checkbox("side by side", Boolean(model.get("compare")), (on) => {
    if (!on) return save({ compare: "" });
    const current = parseMasker(model.get("masker")).kind;
    save({ compare: current === "inpaint_telea" ? `blur(${maxSize},${maxSize})` : "inpaint_telea" });
  });
  side.el.classList.add("xw-se-side");
  const rowA = h("div", { className: "xw-controls" }, [algorithm.el, evals.el, topk.el, scale.el]);
  const rowB = h("div", { className: "xw-controls" }, [first.el, side.el]);
  const el = h("div", { className: "xw-se-controls" }, [rowA, rowB, second.el]);
  const sync = () => {
    algorithm.set(model.get("algorithm"));
    evals.set(model.get("max_evals"));
    topk.set(model.get("top_k"));
    scale.set(model.get("scale_mode"));
    first.set(model.get("masker"));
    const compare = model.get("compare") ?? "";
    side.set(Boolean(compare));
    second.set(compare);
    second.el.style.display = compare ? "" : "none";
  };
  sync();
  return [el, sync];
}

// ---------------------------------------------------------------------------- panels
interface Decoded {
  p: number;
  n: number;
  h: number;
  w: number;
  c: number;
  o: number;
  images: NDArray;
  values: NDArray;
  probs: NDArray | null;
}

function decodePanels(model: AnyModel<ExplorerModel>): Decoded | null {
  const images = decodeArray(model.get("shown_images"));
  const values = decodeArray(model.get("values"));
  if (!images || !values) return null;
  if (images.shape.length !== 4 || values.shape.length !== 5) {
    throw new Error(`expected images (n, h, w, c) and values (panels, n, h, w, o), got [${images.shape}] and [${values.shape}]`);
  }
  const [n, hh, w, c] = images.shape;
  const [p, vn, vh, vw, o] = values.shape;
  if (vn !== n || vh !== hh || vw !== w) {
    throw new Error(`values: expected (panels, ${n}, ${hh}, ${w}, outputs) to match the images, got [${values.shape}]`);
  }
  const probs = decodeArray(model.get("output_probabilities"));
  if (probs && (probs.shape.length !== 3 || probs.shape[0] !== p || probs.shape[1] !== n || probs.shape[2] !== o)) {
    throw new Error(`output_probabilities: expected (${p}, ${n}, ${o}), got [${probs.shape}]`);
  }
  return { p, n, h: hh, w, c, o, images, values, probs };
}

/** max |value| of each image row over every panel ("row"), or one for everything. */
function rowMaxes(d: Decoded, mode: string): number[] {
  const cell = d.h * d.w * d.o;
  const rows = Array.from({ length: d.n }, (_, i) => {
    let m = 0;
    for (let q = 0; q < d.p; q++) m = Math.max(m, maxAbs(d.values.data, (q * d.n + i) * cell, (q * d.n + i + 1) * cell));
    return m > 0 ? m : 1;
  });
  if (mode === "row") return rows;
  const all = Math.max(...rows);
  return rows.map(() => all);
}

function panelHeader(info: PanelInfo | undefined, q: number, best: boolean): HTMLElement {
  const head = h("div", { className: `xw-se-head${best ? " xw-se-best" : ""}`, attrs: { "data-panel": String(q) } });
  if (!info) return head;
  const meta = `${info.algorithm} · ${info.max_evals} evals`;
  head.appendChild(
    h("div", { className: "xw-se-head-top", title: `${info.masker} · ${meta}` }, [
      h("span", { className: "xw-se-masker", text: info.masker }),
      h("span", { className: "xw-se-meta", text: meta }),
    ]),
  );
  const explain =
    `mean area under the deletion curve of the predicted class: pixels hidden in the order of ` +
    `their attribution (most positive first) with ${info.area_masker}; lower = more faithful. ` +
    `Per image: ${info.image_areas.map((a) => formatNumber(a)).join(", ")}`;
  head.appendChild(
    h("div", { className: "xw-se-area", title: explain, attrs: { "data-area": String(info.area) } }, [
      h("span", { text: "deletion area" }),
      h("span", { className: "xw-se-area-value", text: formatNumber(info.area) }),
      sparkline(info.curve, 56, 16),
      best ? h("span", { className: "xw-se-best-tag", text: "★ lower" }) : null,
    ]),
  );
  return head;
}

function place(el: HTMLElement, row: number | string, col: number | string): HTMLElement {
  el.style.gridRow = String(row);
  el.style.gridColumn = String(col);
  return el;
}

function drawPanels(model: AnyModel<ExplorerModel>, body: HTMLElement, tooltip: Tooltip): void {
  clear(body);
  const d = decodePanels(model);
  if (!d) {
    body.appendChild(h("div", { className: "xw-se-empty", text: "computing the first explanation…" }));
    return;
  }
  const cell = Math.max(16, Math.round(Number(model.get("cell_size")) || 64));
  const cellH = cellHeight(cell, d.h, d.w);
  const sizes = cellSizes(body);
  const mode = model.get("scale_mode") === "row" ? "row" : "grid";
  const panels = model.get("panels") ?? [];
  const labels = model.get("output_labels") ?? [];
  const rows = model.get("row_info") ?? [];
  const maxes = rowMaxes(d, mode);
  const areas = panels.map((p) => p.area);
  const bestArea = d.p > 1 ? Math.min(...areas) : NaN;
  const tied = areas.filter((a) => a === bestArea).length > 1;
  const colorbar = (max: number, length: number, caption = "") =>
    attributionColorbar(max, length, caption, { top: sizes.labelHeight, className: "xw-se-cbar" });

  const grid = h("div", { className: "xw-se-grid" });
  const panelCols = Array.from({ length: d.p }, () => `10px repeat(${d.o}, ${cell}px)`).join(" ");
  grid.style.gridTemplateColumns = `${cell}px ${panelCols} auto`;
  const col0 = (q: number) => 3 + q * (d.o + 1); // first cell column of panel q
  for (let q = 0; q < d.p; q++) {
    const head = panelHeader(panels[q], q, d.p > 1 && !tied && areas[q] === bestArea);
    grid.appendChild(place(head, 1, `${col0(q)} / span ${d.o}`));
  }
  const cellSize = d.h * d.w;
  for (let i = 0; i < d.n; i++) {
    const img: ImageRef = { data: d.images.data, offset: i * cellSize * d.c, h: d.h, w: d.w, c: d.c };
    const info = rows[i];
    const canvas = h("canvas", { className: "xw-se-canvas", attrs: { "data-row": String(i), "data-col": "image" } });
    drawImageCell(canvas, img, cell, cellH);
    const name = info ? `#${info.index} ${info.label ?? ""}`.trim() : `image ${i}`;
    const label = cellLabel(info?.correct === false ? `✗ ${name}` : name, null, `xw-label xw-se-image-label${info?.correct === false ? " xw-se-wrong" : ""}`);
    if (info) label.title = pickTitle(info);
    hover(canvas, i, -1, -1);
    grid.appendChild(place(h("div", { className: "xw-se-cell" }, [label, canvas]), i + 2, 1));
    const grey = greyLevels(img);
    for (let q = 0; q < d.p; q++) {
      for (let j = 0; j < d.o; j++) {
        const cv = h("canvas", {
          className: "xw-se-canvas",
          attrs: { "data-panel": String(q), "data-row": String(i), "data-col": String(j) },
        });
        const offset = (q * d.n + i) * cellSize * d.o + j;
        drawAttributionCell(cv, { data: d.values.data, offset, stride: d.o }, grey, maxes[i], d.w, d.h, cell, cellH);
        hover(cv, i, q, j);
        const out = labels[q]?.[i]?.[j] ?? String(j);
        const prob = d.probs ? d.probs.data[(q * d.n + i) * d.o + j] : null;
        grid.appendChild(place(h("div", { className: "xw-se-cell" }, [cellLabel(out, prob), cv]), i + 2, col0(q) + j));
      }
    }
    if (mode === "row") grid.appendChild(place(colorbar(maxes[i], cellH), i + 2, col0(d.p) - 1));
  }
  if (mode === "grid") {
    const length = stackLength(d.n, cellH, sizes);
    grid.appendChild(place(colorbar(maxes[0], length, "attribution"), `2 / span ${d.n}`, col0(d.p) - 1));
  }
  body.appendChild(grid);

  function hover(canvas: HTMLCanvasElement, i: number, q: number, j: number) {
    const img: ImageRef = { data: d!.images.data, offset: i * cellSize * d!.c, h: d!.h, w: d!.w, c: d!.c };
    bindPixelTooltip(canvas, tooltip, d!.w, d!.h, (x, y) => {
      const tip = pixelRows(img, x, y);
      let title = rows[i] ? pickTitle(rows[i]) : `image ${i}`;
      if (q >= 0) {
        const v = d!.values.data[((q * d!.n + i) * cellSize + y * d!.w + x) * d!.o + j];
        const out = labels[q]?.[i]?.[j] ?? String(j);
        tip.push(["attribution", formatSigned(v)], ["class", labelText(out, d!.probs?.data[(q * d!.n + i) * d!.o + j])]);
        if (panels[q]) tip.push(["masker", panels[q].masker]);
        title = out;
      }
      return { rows: tip, title };
    });
  }
}

/** The deletion areas of every setting computed for these images; a click re-selects one. */
function drawScores(model: AnyModel<ExplorerModel>, holder: HTMLElement): void {
  clear(holder);
  const table = scoreTable(model.get("scores") ?? [], (s) => {
    model.set("masker", s.masker as never);
    model.set("algorithm", s.algorithm as never);
    model.set("max_evals", s.max_evals as never);
    model.save_changes();
  });
  if (table) holder.appendChild(table);
}

// ---------------------------------------------------------------------------- render
const SETTINGS = ["masker", "compare", "algorithm", "max_evals", "top_k", "scale_mode", "image_shape"];
const PICKER = ["candidates", "candidate_info", "indices"];
const DATA = ["shown_images", "values", "output_labels", "output_probabilities", "panels", "row_info", "scale_mode", "cell_size"];

function render({ model, el }: Pick<RenderProps<ExplorerModel>, "model" | "el">): () => void {
  return mountView(model as AnyModel, el, {
    className: "xw-shapley-explorer",
    styles: [
      ["picker", PICKER_CSS],
      ["shapley-explorer", CSS],
      ["score-table", SCORE_CSS],
      ["shapley-pager", PAGER_CSS],
    ],
    build: (view) => {
      const [controls, syncControls] = buildControls(model);
      const [pager, syncPager] = buildPager(model);
      const picker = imagePicker((indices) => {
        model.set("indices", indices as never);
        model.save_changes();
      });
      const message = h("div", { className: "xw-se-message", attrs: { "aria-live": "polite" } });
      const body = h("div", { className: "xw-se-body" });
      const scores = h("div", { className: "xw-se-score-holder" });
      const syncPicker = () => {
        let thumbs: NDArray | null = null;
        try {
          thumbs = decodeArray(model.get("candidates"));
        } catch {
          thumbs = null;
        }
        picker.update(thumbs, model.get("candidate_info") ?? [], model.get("indices") ?? []);
      };
      const syncState = () => {
        body.classList.toggle("xw-se-stale", Boolean(model.get("stale")));
        body.setAttribute("aria-busy", String(Boolean(model.get("stale"))));
        message.textContent = model.get("message") ?? "";
      };
      return {
        children: [controls, picker.el, pager, view.status!.el, message, body, scores],
        body,
        syncTitle: false,
        draw: () => drawPanels(model, body, view.tooltip),
        bindings: [
          [SETTINGS, syncControls],
          [PICKER, syncPicker],
          [["page", "pool_size", "has_next_page"], syncPager],
          [DATA, view.redraw],
          [["stale", "message"], syncState],
          [["scores"], () => drawScores(model, scores)],
        ],
      };
    },
  });
}

export { parseMasker };
export { buildPager };
export default { render };
