// The rows of an AttributionGrid: each row is ONE canvas holding its image cell and its output
// cells (labels and cell frames are positioned elements over it), drawn only near the viewport
// (LazyRows). Colour scales are cached per values buffer; a colour-only change repaints the
// drawn rows in place.
import type { AnyModel } from "@anywidget/types";
import { type NDArray, type SerializedArray, decodeArray } from "./arrays";
import { attributionColorbar, pixelRows } from "./attribution_cells";
import { clear, h } from "./dom";
import { type GridLayout, LABEL_HEIGHT, type Rect, cellAt, cellRect, gridLayout } from "./grid_layout";
import { CellPainter, type ImageRef, greyLevels, imageRGBA, overlayRGBA } from "./image";
import { cellLabel, labelText } from "./labels";
import { LazyRows } from "./lazy_rows";
import { formatSigned, symmetricMax } from "./scale";
import type { Tooltip, TooltipRow } from "./tooltip";

export interface GridModel {
  images: SerializedArray | null;
  values: SerializedArray | null;
  output_labels: string[][];
  output_probabilities: SerializedArray | null;
  row_titles: string[];
  true_columns: number[];
  wrong_rows: boolean[];
  predicted_names: string[];
  scale_mode: "grid" | "row";
  cell_size: number;
  invert_image: boolean;
  show_colorbar: boolean;
  show_controls: boolean;
  title: string;
  colorbar_label: string;
  page: number; // paging: the page shown (AttributionGrid.paging / show_rows)
  page_size: number; // rows per page; 0: no paging
  row_count: number; // rows of all pages
  error: string;
  progress: number;
}

export const GRID_CSS = `
.xw-ag-layout { display: flex; flex-wrap: wrap; align-items: flex-start; column-gap: 8px; row-gap: 8px; }
.xw-ag-rows { display: flex; flex-direction: column; row-gap: 10px; }
.xw-ag-row { position: relative; flex: none; }
.xw-ag-row-canvas { position: absolute; left: 0; top: 0; display: block; image-rendering: pixelated; cursor: crosshair; }
.xw-ag-cell { position: absolute; pointer-events: none; box-shadow: 0 0 0 1px rgba(127,127,127,.25); }
.xw-ag-row .xw-label { position: absolute; box-sizing: border-box; pointer-events: auto; }
.xw-ag-row .xw-label-name { display: inline-block; max-width: 100%; overflow: hidden; text-overflow: ellipsis;
  vertical-align: top; }
.xw-ag-row .xw-label-name:not(:last-child) { max-width: calc(100% - 34px); }
.xw-ag-row .xw-label.xw-ag-label-2 { line-height: 14px; }
.xw-ag-label-2 .xw-label-name, .xw-ag-row .xw-ag-label-2 .xw-label-name:not(:last-child) { display: block; max-width: 100%; }
.xw-ag-label-2 .xw-label-prob { display: block; }
.xw-ag-label-2.xw-ag-image-label { white-space: normal; overflow: hidden; overflow-wrap: anywhere; }
.xw-ag-image-label { font-weight: 600; }
.xw-ag-true { color: ${"#17803a"}; font-weight: 600; }
.xw-ag-wrong { color: #c4122f; }
.xw-ag-side { position: sticky; top: 8px; }
.xw-ag-row .xw-cbar { position: absolute; }
`;

/** Room around cells for the true-label / wrong-prediction frames (CSS px). */
const PAD = 3;
const ROW_GAP = 10; // keep equal to .xw-ag-rows row-gap
const COLORBAR_WIDTH = 84; // padding + bar + tick labels
const TWO_LINES_BELOW = 120;
const TRUE_COLOUR = "#17803a";
const WRONG_COLOUR = "#c4122f";

export interface Decoded {
  n: number;
  h: number;
  w: number;
  c: number;
  o: number;
  images: NDArray;
  values: NDArray;
  probs: NDArray | null;
}

/** Decode and cross-check the array traits; throws an Error saying what is wrong. */
export function decodeGrid(model: AnyModel<GridModel>): Decoded | null {
  const images = decodeArray(model.get("images"));
  const values = decodeArray(model.get("values"));
  if (!images || !values) return null;
  if (images.shape.length !== 4) {
    throw new Error(`images: expected shape (n, h, w, c), got [${images.shape.join(", ")}]`);
  }
  if (values.shape.length !== 4) {
    throw new Error(`values: expected shape (n, h, w, outputs), got [${values.shape.join(", ")}]`);
  }
  const [n, hh, w, c] = images.shape;
  const o = values.shape[3];
  if (values.shape[0] !== n || values.shape[1] !== hh || values.shape[2] !== w) {
    throw new Error(
      `values: expected shape (${n}, ${hh}, ${w}, outputs) to match images, got [${values.shape.join(", ")}]`,
    );
  }
  const probs = decodeArray(model.get("output_probabilities"));
  if (probs && (probs.shape.length !== 2 || probs.shape[0] !== n || probs.shape[1] !== o)) {
    throw new Error(`output_probabilities: expected shape (${n}, ${o}), got [${probs.shape.join(", ")}]`);
  }
  return { n, h: hh, w, c, o, images, values, probs };
}

/**
 * Colour scales per values buffer (the trait's object stays the same until it changes): a
 * redraw for a new cell size or width does not scan 1,000 x 28 x 28 x 10 values again.
 */
interface Scales {
  grid?: number;
  rows: number[];
}
const SCALES = new WeakMap<object, Scales>();

function scalesOf(key: object | null): Scales {
  if (!key) return { rows: [] };
  let s = SCALES.get(key);
  if (!s) SCALES.set(key, (s = { rows: [] }));
  return s;
}

export function layoutOf(model: AnyModel<GridModel>, d: Decoded, available: number): GridLayout {
  return gridLayout({
    columns: 1 + d.o,
    imageWidth: d.w,
    imageHeight: d.h,
    cellSize: Number(model.get("cell_size")) || 0,
    available: available > 0 ? available - 2 * PAD : 0,
    reserved: model.get("show_colorbar") !== false ? COLORBAR_WIDTH : 0,
    // "Sandal 0.93" needs about 110 px on one line; narrower cells put the probability below
    twoLinesBelow: d.probs ? TWO_LINES_BELOW : 0,
  });
}

/** One drawn grid: its layout, lazily drawn rows and colour scales. */
export class Grid {
  readonly layout: GridLayout;
  readonly el: HTMLElement;
  private readonly rows: LazyRows;
  private readonly rowsEl: HTMLElement;
  private readonly side: HTMLElement;
  private readonly painter = new CellPainter();
  private mode: "grid" | "row" = "grid";
  private invert = false;
  private gridMax = 1;
  private readonly scales: Scales;

  constructor(
    private readonly model: AnyModel<GridModel>,
    readonly d: Decoded,
    available: number,
    private readonly tooltip: Tooltip,
  ) {
    const showBar = model.get("show_colorbar") !== false;
    this.layout = layoutOf(model, d, available);
    this.scales = scalesOf(model.get("values"));
    this.readColours();
    this.rowsEl = h("div", { className: "xw-ag-rows" });
    this.side = h("div", { className: "xw-ag-side" });
    this.el = h("div", { className: "xw-ag-layout xw-ag-grid" }, [this.rowsEl, this.side]);
    this.rows = new LazyRows({ draw: (i, el) => this.drawRow(i, el) });
    const rowWidth = this.layout.width + 2 * PAD + (showBar && this.mode === "row" ? COLORBAR_WIDTH : 0);
    const rowHeight = this.layout.height + PAD;
    for (let i = 0; i < d.n; i++) {
      const row = h("div", {
        className: "xw-ag-row",
        attrs: { "data-row": String(i) },
        style: { width: `${rowWidth}px`, height: `${rowHeight}px` },
      });
      this.rowsEl.appendChild(row);
      this.rows.add(i, row);
    }
    // the first screenful now (the observer reports a frame later; rows far off are released then)
    const screen = (typeof window !== "undefined" && window.innerHeight) || 800;
    const eager = Math.min(d.n, Math.ceil(screen / (rowHeight + ROW_GAP)) + 1);
    for (let i = 0; i < eager; i++) this.rows.draw(i);
    this.drawSideBar();
  }

  /** Repaint after a colour-only change (scale mode, inversion): drawn rows and the bar. */
  recolour(): void {
    const wasRow = this.mode === "row";
    this.readColours();
    if (wasRow !== (this.mode === "row")) this.resizeRows();
    this.rows.redrawDrawn();
    this.drawSideBar();
  }

  dispose(): void {
    this.rows.disconnect();
  }

  private readColours(): void {
    this.mode = this.model.get("scale_mode") === "row" ? "row" : "grid";
    this.invert = Boolean(this.model.get("invert_image"));
    if (this.mode === "grid") this.gridMax = this.scales.grid ??= symmetricMax(this.d.values.data);
  }

  private resizeRows(): void {
    const showBar = this.model.get("show_colorbar") !== false;
    const width = this.layout.width + 2 * PAD + (showBar && this.mode === "row" ? COLORBAR_WIDTH : 0);
    for (const row of Array.from(this.rowsEl.children) as HTMLElement[]) row.style.width = `${width}px`;
  }

  /** max |value| of row i's colour scale. */
  private scaleOf(i: number): number {
    if (this.mode === "grid") return this.gridMax;
    const rows = this.scales.rows;
    if (rows[i] === undefined) {
      const size = this.d.h * this.d.w * this.d.o;
      rows[i] = symmetricMax(this.d.values.data, i * size, (i + 1) * size);
    }
    return rows[i];
  }

  private drawSideBar(): void {
    clear(this.side);
    if (this.model.get("show_colorbar") === false || this.mode !== "grid") return;
    const n = this.d.n;
    const total = n * (this.layout.height + PAD) + (n - 1) * ROW_GAP;
    const length = Math.max(24, Math.min(Math.max(this.layout.cellH, 160), total - this.layout.labelH - PAD));
    this.side.appendChild(colorbar(this.gridMax, length, this.model.get("colorbar_label") ?? "", this.layout.labelH));
  }

  private drawRow(i: number, row: HTMLElement): void {
    const { d, layout } = this;
    const labels = this.model.get("output_labels") ?? [];
    const title = (this.model.get("row_titles") ?? [])[i] ?? "";
    const trueCol = Number((this.model.get("true_columns") ?? [])[i] ?? -1);
    const wrong = Boolean((this.model.get("wrong_rows") ?? [])[i]);
    const predicted = (this.model.get("predicted_names") ?? [])[i] ?? "";
    const max = this.scaleOf(i);
    const canvas = h("canvas", {
      className: "xw-ag-row-canvas",
      attrs: {
        "data-row": String(i),
        role: "img",
        "aria-label": `${title || `image ${i}`}: the image and ${d.o} attribution map${d.o === 1 ? "" : "s"}`,
      },
    });
    const ctx = CellPainter.prepare(canvas, layout.width + 2 * PAD, layout.height + PAD);
    const img: ImageRef = { data: d.images.data, offset: i * d.h * d.w * d.c, h: d.h, w: d.w, c: d.c };
    const parts: HTMLElement[] = [canvas];
    const grey = greyLevels(img, this.invert);
    const cells = [imageRGBA(img, this.invert)];
    const rects = [padded(layout, 0)];
    for (let j = 0; j < d.o; j++) {
      cells.push(overlayRGBA({ data: d.values.data, offset: i * d.h * d.w * d.o + j, stride: d.o }, grey, max));
      rects.push(padded(layout, j + 1));
    }
    if (ctx) this.painter.paint(ctx, cells, d.w, d.h, rects);
    for (let col = 0; col <= d.o; col++) {
      const r = rects[col];
      const j = col - 1;
      let label: HTMLElement;
      if (j < 0) {
        label = cellLabel(wrong ? `✗ ${title || "wrong"}` : title, null, "xw-label xw-ag-image-label");
        if (wrong) {
          label.classList.add("xw-ag-wrong");
          label.title = `${title ? `${title} · ` : ""}prediction wrong${predicted ? `: predicted ${predicted}` : ""}`;
        }
      } else {
        const name = labels[i]?.[j] ?? String(j);
        label = cellLabel(name, d.probs ? d.probs.data[i * d.o + j] : null);
        if (j === trueCol) {
          label.classList.add("xw-ag-true");
          label.title += " · true label";
        }
      }
      // the label sits in the cell's frame element, in the band above the cell
      label.style.left = "0px";
      label.style.top = `${-layout.labelH}px`;
      label.style.height = `${layout.labelH}px`; // the band the layout reserved, whatever the CSS
      if (layout.labelH !== LABEL_HEIGHT) label.classList.add("xw-ag-label-2");
      label.style.width = `${r.w}px`;
      const frame = h(
        "div",
        {
          className: "xw-ag-cell",
          attrs: { "data-row": String(i), "data-col": j < 0 ? "image" : String(j) },
          style: { left: `${r.x}px`, top: `${r.y}px`, width: `${r.w}px`, height: `${r.h}px` },
        },
        [label],
      );
      parts.push(frame);
      if (ctx && ((j >= 0 && j === trueCol) || (j < 0 && wrong))) {
        ctx.save();
        const dpr = canvas.width / (layout.width + 2 * PAD);
        ctx.strokeStyle = j < 0 ? WRONG_COLOUR : TRUE_COLOUR;
        ctx.lineWidth = 2 * dpr;
        ctx.strokeRect((r.x - 2) * dpr, (r.y - 2) * dpr, (r.w + 4) * dpr, (r.h + 4) * dpr);
        ctx.restore();
      }
    }
    if (this.mode === "row" && this.model.get("show_colorbar") !== false) {
      const bar = colorbar(max, layout.cellH, i === d.n - 1 ? (this.model.get("colorbar_label") ?? "") : "", layout.labelH);
      bar.style.left = `${layout.width + 2 * PAD}px`;
      bar.style.top = "0px";
      parts.push(bar);
    }
    row.append(...parts);
    this.hover(canvas, i, img, trueCol, wrong, predicted);
  }

  private hover(canvas: HTMLCanvasElement, i: number, img: ImageRef, trueCol: number, wrong: boolean, predicted: string) {
    const { d, layout } = this;
    canvas.addEventListener("mousemove", (ev) => {
      const box = canvas.getBoundingClientRect();
      if (!(box.width > 0 && box.height > 0)) return this.tooltip.hide();
      const x = ((ev.clientX - box.left) / box.width) * (layout.width + 2 * PAD);
      const y = ((ev.clientY - box.top) / box.height) * (layout.height + PAD);
      const col = cellAt(layout, x - PAD, y);
      if (col < 0) return this.tooltip.hide();
      const r = padded(layout, col);
      const px = Math.min(d.w - 1, Math.floor(((x - r.x) / r.w) * d.w));
      const py = Math.min(d.h - 1, Math.floor(((y - r.y) / r.h) * d.h));
      const rows: TooltipRow[] = pixelRows(img, px, py);
      const titles = this.model.get("row_titles") ?? [];
      let heading = titles[i] || `image ${i}`;
      const j = col - 1;
      if (j >= 0) {
        const v = d.values.data[((i * d.h + py) * d.w + px) * d.o + j];
        const name = this.model.get("output_labels")?.[i]?.[j] ?? `output ${j}`;
        rows.push(["attribution", formatSigned(v)]);
        rows.push(["class", labelText(name, d.probs?.data[i * d.o + j])]);
        if (j === trueCol) rows.push(["true label", "yes"]);
        heading = name;
      } else if (predicted) {
        rows.push(["predicted", predicted]);
        if (wrong) rows.push(["prediction", "wrong"]);
      }
      this.tooltip.show(ev.clientX, ev.clientY, rows, heading);
    });
    canvas.addEventListener("mouseleave", () => this.tooltip.hide());
  }
}

/** Cell `col`'s rectangle in its row element: the layout's, moved PAD to the right (room for frames). */
function padded(layout: GridLayout, col: number): Rect {
  const r = cellRect(layout, col);
  return { ...r, x: r.x + PAD };
}

export function sameLayout(a: GridLayout, b: GridLayout): boolean {
  return a.cell === b.cell && a.cellH === b.cellH && a.perLine === b.perLine;
}

function colorbar(maxAbs: number, length: number, caption: string, top: number): HTMLElement {
  const bar = attributionColorbar(maxAbs, length, caption, { top, className: "xw-ag-cbar" });
  bar.style.paddingLeft = "8px";
  return bar;
}
