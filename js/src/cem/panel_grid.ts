// The panel grid of the CEMWidget: the original, then one column per mode (PN, PP) with its
// heading, class label, image (or why there is none), steps caption and delta below, all deltas
// on one diverging scale with its colour bar beside them. Text only; the classes are styled by
// cem_widget.ts.
import type { NDArray } from "../lib/arrays";
import {
  attributionColorbar,
  bindPixelTooltip,
  cellHeight,
  drawAttributionCell,
  drawImageCell,
} from "../lib/attribution_cells";
import { h } from "../lib/dom";
import { type ImageRef, underlay } from "../lib/image";
import { cellLabel } from "../lib/labels";
import { formatNumber, formatSigned, symmetricMax } from "../lib/scale";
import type { Tooltip, TooltipRow } from "../lib/tooltip";

/** One mode's search as the kernel sends it: its state, the class found, the c and distance. */
export interface Panel {
  mode: "PN" | "PP";
  status: "searching" | "found" | "not_found";
  complete: boolean;
  class: number;
  label: string;
  probability: number | null;
  steps: number;
  total_steps: number;
  c: number | null;
  distance: number | null;
  message: string;
}

/** The decoded arrays of a frame: original (h, w, c); images and deltas (panels, h, w, c). */
export interface Decoded {
  h: number;
  w: number;
  c: number;
  original: NDArray;
  images: NDArray | null;
  deltas: NDArray | null;
}

const MODE_TITLE: Record<string, string> = { PN: "pertinent negative", PP: "pertinent positive" };
const DELTA_TITLE: Record<string, string> = { PN: "added by the PN", PP: "kept by the PP" };
const DELTA_HELP: Record<string, string> = {
  PN: "PN − original: what the PN adds to the image (red: brighter, blue: darker)",
  PP: "the part of the original that the PP keeps (the PP itself)",
};

/** The caption under a panel: what the search found (its c and distance) or how far it is. */
export function stepsText(p: Panel): string {
  if (p.status === "not_found") return `searched ${p.steps} steps`;
  if (p.status === "searching") return `searching · step ${p.steps} of ${p.total_steps}`;
  if (!p.complete) return `best so far · step ${p.steps} of ${p.total_steps}`;
  const parts = [p.c != null ? `c ${formatNumber(p.c)}` : "", p.distance != null ? `distance ${formatNumber(p.distance)}` : ""];
  return parts.filter(Boolean).join(" · ") || "found";
}

/** The caption's hover text: the same in words. */
export function stepsTitle(p: Panel): string {
  if (p.status !== "found") return stepsText(p);
  const what = p.complete ? "found" : `best so far after ${p.steps} of ${p.total_steps} steps`;
  const c = p.c != null ? ` with attack weight c = ${formatNumber(p.c)}` : "";
  const dist = p.distance != null ? `; elastic-net distance to the original ${formatNumber(p.distance)}` : "";
  return `${what}${c}${dist}`;
}

/** What a mode's column shows: this frame's panel, or the kept picture while searching. */
export interface Column {
  p: Panel | null;
  image: Float32Array | null;
  sum: Float32Array | null;
  faded: boolean;
  caption: string;
}

/** What the cells of one drawn frame share: the arrays, the cell size, the delta scale. */
interface Cells {
  d: Decoded;
  cell: number;
  cellH: number;
  /** faint copy of the original under the deltas */
  grey: Float32Array;
  maxAbs: number;
  tooltip: Tooltip;
}

/** A canvas cell of `panel` ("original", "PN", "PP") showing its image or its delta. */
function cemCanvas(panel: string, kind: string): HTMLCanvasElement {
  return h("canvas", { className: "xw-cem-canvas", attrs: { "data-panel": panel, "data-kind": kind } });
}

/** A cell-sized box saying why a panel has no picture (still searching, or none found). */
function emptyCell(cells: Cells, text: string, status: string, panel: string, kind: string): HTMLElement {
  return h("div", {
    className: "xw-cem-empty",
    text,
    style: { width: `${cells.cell}px`, height: `${cells.cellH}px` },
    attrs: { "data-status": status, "data-panel": panel, "data-kind": kind },
  });
}

/** The pixel tooltip of a canvas: the original's value, and the column's image and delta there. */
function bindHover(cells: Cells, canvas: HTMLCanvasElement, column: Column | null, kind: string): void {
  const { d } = cells;
  bindPixelTooltip(canvas, cells.tooltip, d.w, d.h, (x, y) => {
    const p = (y * d.w + x) * d.c;
    const rows: TooltipRow[] = [
      ["pixel (x, y)", `(${x}, ${y})`],
      ["original", formatNumber(d.original.data[p])],
    ];
    let heading = "original";
    if (column && column.p && column.image && column.sum) {
      const mode = column.p.mode;
      rows.push([mode, formatNumber(column.image[p])], ["delta", formatSigned(column.sum[y * d.w + x])]);
      heading = kind === "delta" ? DELTA_TITLE[mode] : MODE_TITLE[mode];
    }
    return { rows, title: heading };
  });
}

/** The image and delta cells of a mode: two canvases, or boxes saying why there are none. */
function modeCells(cells: Cells, mode: string, column: Column): [HTMLElement, HTMLElement] {
  const { d, cell, cellH } = cells;
  const p = column.p;
  if (column.image && column.sum) {
    const image = cemCanvas(mode, "image");
    drawImageCell(image, { data: column.image, offset: 0, h: d.h, w: d.w, c: d.c }, cell, cellH);
    bindHover(cells, image, column, "image");
    const delta = cemCanvas(mode, "delta");
    drawAttributionCell(delta, { data: column.sum, offset: 0, stride: 1 }, cells.grey, cells.maxAbs, d.w, d.h, cell, cellH);
    bindHover(cells, delta, column, "delta");
    return [image, delta];
  }
  if (p && p.status === "not_found") {
    return [emptyCell(cells, p.message || `no ${mode} found`, "not_found", mode, "image"), emptyCell(cells, "—", "not_found", mode, "delta")];
  }
  return [emptyCell(cells, "searching…", "searching", mode, "image"), emptyCell(cells, "", "searching", mode, "delta")];
}

/** A mode's column top to bottom: heading, class label, image, steps caption, gap, delta heading, delta. */
function modeColumn(cells: Cells, mode: string, column: Column): HTMLElement[] {
  const p = column.p;
  const heading = h("div", { className: "xw-cem-heading", text: MODE_TITLE[mode] ?? mode, title: mode });
  const label = p && p.status === "found" ? cellLabel(p.label, p.probability) : cellLabel("—", null);
  label.setAttribute("data-panel", mode);
  label.classList.add("xw-cem-class");
  const [image, delta] = modeCells(cells, mode, column);
  if (p) image.setAttribute("data-status", column.faded && column.image ? "kept" : p.status);
  const caption = h("div", {
    className: "xw-cem-caption",
    text: column.caption,
    title: p && !column.faded ? stepsTitle(p) : column.caption,
    attrs: { "data-panel": mode },
  });
  const deltaHeading = h("div", { className: "xw-cem-heading", text: DELTA_TITLE[mode] ?? "delta", title: DELTA_HELP[mode] ?? "" });
  const nodes = [heading, label, image, caption, h("div", { className: "xw-cem-gap" }), deltaHeading, delta];
  for (const node of nodes) {
    node.setAttribute("data-col", mode);
    if (column.faded) node.classList.add("xw-cem-stale");
  }
  return nodes;
}

/** The model's settings the grid draws with. */
export interface GridOptions {
  /** cell width in CSS pixels (at least 16; 112 when unset) */
  cellSize: number;
  originalLabel: string;
  originalProba: number;
  tooltip: Tooltip;
}

/** The grid: the original, one column per mode, the colour bar beside the deltas (one scale for both). */
export function drawGrid(d: Decoded, modes: string[], columns: Map<string, Column>, opts: GridOptions): HTMLElement {
  const cell = Math.max(16, Math.round(Number(opts.cellSize) || 112));
  const cellH = cellHeight(cell, d.h, d.w);
  const orig: ImageRef = { data: d.original.data, offset: 0, h: d.h, w: d.w, c: d.c };
  let maxAbs = 0;
  for (const col of columns.values()) if (col.sum) maxAbs = Math.max(maxAbs, symmetricMax(col.sum));
  if (!(maxAbs > 0)) maxAbs = 1;
  const cells: Cells = { d, cell, cellH, grey: underlay(orig), maxAbs, tooltip: opts.tooltip };

  const grid = h("div", { className: "xw-cem-grid" });
  // columns as wide as a picture, or as their heading where that is wider (never cut)
  grid.style.gridTemplateColumns = `repeat(${1 + modes.length}, minmax(${cell}px, max-content)) auto`;
  const put = (node: HTMLElement, col: number, row: number) => {
    node.style.gridColumn = String(col);
    node.style.gridRow = String(row);
    grid.appendChild(node);
  };
  // column 1: the original
  put(h("div", { className: "xw-cem-heading", text: "original" }), 1, 1);
  put(cellLabel(opts.originalLabel, opts.originalProba), 1, 2);
  const oc = cemCanvas("original", "image");
  drawImageCell(oc, orig, cell, cellH);
  bindHover(cells, oc, null, "image");
  put(oc, 1, 3);
  put(h("div", { className: "xw-cem-caption", text: "" }), 1, 4);
  // then one column per mode
  modes.forEach((mode, j) => modeColumn(cells, mode, columns.get(mode)!).forEach((node, r) => put(node, j + 2, r + 1)));
  if ([...columns.values()].some((col) => col.sum)) {
    const bar = attributionColorbar(maxAbs, cellH, "delta");
    bar.style.paddingLeft = "4px";
    bar.style.justifySelf = "start";
    put(bar, modes.length + 2, 7);
  }
  return grid;
}
