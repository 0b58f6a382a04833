// InfluenceGrid: one influence map per class (or one performance map), all on one colour
// scale symmetric around 0, over a faint copy of the test set's mean image. Clicking a class
// opens its map large with the mean image beside it. Every string is set as text.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { type NDArray, type SerializedArray, decodeArray } from "./lib/arrays";
import {
  attributionColorbar,
  bindPixelTooltip,
  cellHeight,
  cellSizes,
  drawAttributionCell,
  drawImageCell,
  stackLength,
} from "./lib/attribution_cells";
import { checkbox, slider } from "./lib/controls";
import { clear, h } from "./lib/dom";
import { type ImageRef, underlay } from "./lib/image";
import { cellLabel } from "./lib/labels";
import { formatNumber, formatSigned, symmetricMax } from "./lib/scale";
import type { Tooltip, TooltipRow } from "./lib/tooltip";
import { mountView } from "./lib/view";
import { saver } from "./lib/model";

export interface InfluenceModel {
  maps: SerializedArray | null;
  class_names: string[];
  mean_image: SerializedArray | null;
  base_values: SerializedArray | null;
  cell_size: number;
  columns: number;
  show_mean_image: boolean;
  selected: number;
  detail_width: number;
  title: string;
  colorbar_label: string;
  value_label: string;
  base_label: string;
  show_controls: boolean;
  error: string;
  progress: number;
}

/** padding of a map's cell (its selection frame): the label band above a map is the label plus 2 x this */
const CELL_PAD = 2;

const CSS = `
.xw-ig-body { display: flex; flex-direction: column; gap: 12px; }
.xw-ig-top { display: flex; align-items: flex-start; gap: 8px; }
.xw-ig-grid { display: grid; column-gap: 6px; row-gap: var(--xw-row-gap); align-items: start; }
.xw-ig-cell { display: flex; flex-direction: column; cursor: pointer; border-radius: 3px; padding: ${CELL_PAD}px; }
.xw-ig-cell:hover { background: rgba(47,111,223,.08); }
.xw-ig-cell.xw-ig-selected { box-shadow: 0 0 0 2px #2f6fdf; }
.xw-ig-cell .xw-label { font-size: 12px; font-weight: 600; }
.xw-ig-canvas { display: block; image-rendering: pixelated; cursor: crosshair; background: #fff;
  box-shadow: 0 0 0 1px rgba(127,127,127,.25); }
.xw-ig-detail { display: flex; flex-direction: column; gap: 6px; padding: 8px; border-radius: 4px;
  border: 1px solid rgba(127,127,127,.3); align-self: flex-start; }
.xw-ig-detail-head { display: flex; align-items: center; gap: 8px; }
.xw-ig-detail-title { font-size: 13px; font-weight: 600; flex: 1; }
.xw-ig-detail-close { border: none; background: transparent; color: inherit; cursor: pointer;
  font-size: 16px; line-height: 1; padding: 0 4px; }
.xw-ig-detail-row { display: flex; align-items: flex-start; gap: 12px; }
.xw-ig-detail-panel { display: flex; flex-direction: column; gap: 2px; }
.xw-ig-caption { font-size: 11px; color: var(--jp-ui-font-color2, #59636e); text-align: center; }
`;

const REDRAW_ON = [
  "maps",
  "class_names",
  "mean_image",
  "base_values",
  "cell_size",
  "columns",
  "show_mean_image",
  "selected",
  "detail_width",
  "colorbar_label",
  "value_label",
  "base_label",
  "show_controls",
  "title",
];

export interface DecodedMaps {
  k: number;
  h: number;
  w: number;
  maps: NDArray;
  mean: NDArray | null;
  base: NDArray | null;
}

/** Decode and cross-check the array traits; throws an Error that says what is wrong. */
export function decodeMaps(model: AnyModel<InfluenceModel>): DecodedMaps | null {
  const maps = decodeArray(model.get("maps"));
  if (!maps) return null;
  if (maps.shape.length !== 3) {
    throw new Error(`maps: expected shape (k, h, w), got [${maps.shape.join(", ")}]`);
  }
  const [k, hh, w] = maps.shape;
  const mean = decodeArray(model.get("mean_image"));
  if (mean && (mean.shape.length !== 3 || mean.shape[0] !== hh || mean.shape[1] !== w)) {
    throw new Error(`mean_image: expected shape (${hh}, ${w}, c), got [${mean.shape.join(", ")}]`);
  }
  const base = decodeArray(model.get("base_values"));
  if (base && (base.shape.length !== 1 || base.shape[0] !== k)) {
    throw new Error(`base_values: expected shape (${k}), got [${base.shape.join(", ")}]`);
  }
  return { k, h: hh, w, maps, mean, base };
}

/** Maps per row: the `columns` trait, or at most 5 spread evenly (10 maps -> 5 + 5). */
export function gridColumns(k: number, columns: number): number {
  if (columns > 0) return Math.min(columns, k);
  if (k <= 5) return Math.max(1, k);
  return Math.ceil(k / Math.ceil(k / 5));
}

function meanRef(d: DecodedMaps): ImageRef | null {
  return d.mean ? { data: d.mean.data, offset: 0, h: d.h, w: d.w, c: d.mean.shape[2] } : null;
}

function meanPixel(d: DecodedMaps, x: number, y: number): number | null {
  if (!d.mean) return null;
  const c = d.mean.shape[2];
  const k = (y * d.w + x) * c;
  let s = 0;
  const used = Math.min(c, 3);
  for (let ch = 0; ch < used; ch++) s += d.mean.data[k + ch];
  return s / used;
}

interface DrawContext {
  model: AnyModel<InfluenceModel>;
  d: DecodedMaps;
  maxAbs: number;
  grey: Float32Array;
  faint: number;
  names: string[];
  tooltip: Tooltip;
}

function drawMap(ctx: DrawContext, canvas: HTMLCanvasElement, i: number, width: number): void {
  const { d } = ctx;
  const height = cellHeight(width, d.h, d.w);
  const values = { data: d.maps.data, offset: i * d.h * d.w, stride: 1 };
  drawAttributionCell(canvas, values, ctx.grey, ctx.maxAbs, d.w, d.h, width, height, ctx.faint);
  bindPixelTooltip(canvas, ctx.tooltip, d.w, d.h, (x, y) => {
    const v = d.maps.data[(i * d.h + y) * d.w + x];
    const rows: TooltipRow[] = [
      ["pixel (x, y)", `(${x}, ${y})`],
      [ctx.model.get("value_label") || "value", formatSigned(v)],
    ];
    const m = meanPixel(d, x, y);
    if (m != null) rows.push(["mean pixel", formatNumber(m)]);
    if (d.base) rows.push([ctx.model.get("base_label") || "base", formatNumber(d.base.data[i])]);
    return { rows, title: ctx.names[i] ?? `class ${i}` };
  });
}

function select(model: AnyModel<InfluenceModel>, i: number): void {
  model.set("selected", i);
  model.save_changes();
}

function drawGrid(ctx: DrawContext, body: HTMLElement): void {
  const { model, d } = ctx;
  const cell = Math.max(16, Math.round(Number(model.get("cell_size")) || 120));
  const cellH = cellHeight(cell, d.h, d.w);
  const cols = gridColumns(d.k, Math.round(Number(model.get("columns")) || 0));
  const rows = Math.ceil(d.k / cols);
  const selected = Number(model.get("selected"));

  const grid = h("div", { className: "xw-ig-grid" });
  grid.style.gridTemplateColumns = `repeat(${cols}, ${cell + 4}px)`;
  for (let i = 0; i < d.k; i++) {
    const canvas = h("canvas", { className: "xw-ig-canvas", attrs: { "data-class": String(i) } });
    drawMap(ctx, canvas, i, cell);
    const name = ctx.names[i] ?? String(i);
    const wrapper = h(
      "div",
      {
        className: `xw-ig-cell${i === selected ? " xw-ig-selected" : ""}`,
        title: `${name}: click to open`,
        attrs: { "data-class": String(i), role: "button", "aria-pressed": String(i === selected) },
      },
      [cellLabel(name, null), canvas],
    );
    wrapper.addEventListener("click", () => select(model, i === Number(model.get("selected")) ? -1 : i));
    grid.appendChild(wrapper);
  }
  const sizes = cellSizes(body);
  const length = stackLength(rows, cellH, sizes, 2 * CELL_PAD);
  const bar = attributionColorbar(ctx.maxAbs, length, model.get("colorbar_label") ?? "", {
    top: sizes.labelHeight + 2 * CELL_PAD,
  });
  body.appendChild(h("div", { className: "xw-ig-top" }, [grid, bar]));

  if (selected >= 0 && selected < d.k) body.appendChild(detailPanel(ctx, selected));
}

function detailPanel(ctx: DrawContext, i: number): HTMLElement {
  const { model, d } = ctx;
  const width = Math.max(32, Math.round(Number(model.get("detail_width")) || 280));
  const height = cellHeight(width, d.h, d.w);
  const name = ctx.names[i] ?? String(i);
  const close = h("button", { className: "xw-ig-detail-close", text: "×", title: "close" });
  close.addEventListener("click", () => select(model, -1));
  const map = h("canvas", { className: "xw-ig-canvas xw-ig-detail-map", attrs: { "data-class": String(i) } });
  drawMap(ctx, map, i, width);
  const panels: HTMLElement[] = [
    h("div", { className: "xw-ig-detail-panel" }, [
      map,
      h("div", { className: "xw-ig-caption", text: model.get("value_label") || "influence" }),
    ]),
    attributionColorbar(ctx.maxAbs, height),
  ];
  const ref = meanRef(d);
  if (ref) {
    const mean = h("canvas", { className: "xw-ig-canvas xw-ig-detail-mean" });
    drawImageCell(mean, ref, width, height);
    bindPixelTooltip(mean, ctx.tooltip, d.w, d.h, (x, y) => {
      const m = meanPixel(d, x, y);
      return {
        rows: [
          ["pixel (x, y)", `(${x}, ${y})`],
          ["mean pixel", m == null ? "" : formatNumber(m)],
        ],
        title: "mean image",
      };
    });
    panels.push(
      h("div", { className: "xw-ig-detail-panel" }, [mean, h("div", { className: "xw-ig-caption", text: "mean image" })]),
    );
  }
  return h("div", { className: "xw-ig-detail", attrs: { "data-class": String(i) } }, [
    h("div", { className: "xw-ig-detail-head" }, [h("div", { className: "xw-ig-detail-title", text: name }), close]),
    h("div", { className: "xw-ig-detail-row" }, panels),
  ]);
}

function draw(model: AnyModel<InfluenceModel>, body: HTMLElement, tooltip: Tooltip): void {
  clear(body);
  const d = decodeMaps(model);
  if (!d) return;
  const ref = meanRef(d);
  const showMean = model.get("show_mean_image") !== false && ref != null;
  const ctx: DrawContext = {
    model,
    d,
    maxAbs: symmetricMax(d.maps.data),
    grey: ref ? underlay(ref) : new Float32Array(d.h * d.w),
    faint: showMean ? 0.25 : 0,
    names: model.get("class_names") ?? [],
    tooltip,
  };
  drawGrid(ctx, body);
}

function buildControls(model: AnyModel<InfluenceModel>): [HTMLElement, () => void] {
  const save = saver(model);
  const width = slider("cell width", 40, 400, 4, model.get("cell_size"), (v) => save("cell_size", v), (v) => `${v}px`);
  const mean = checkbox("mean image under the maps", model.get("show_mean_image"), (v) => save("show_mean_image", v));
  const el = h("div", { className: "xw-controls" }, [width.el, mean.el]);
  const sync = () => {
    width.set(model.get("cell_size"));
    mean.set(model.get("show_mean_image"));
    el.style.display = model.get("show_controls") === false ? "none" : "";
  };
  sync();
  return [el, sync];
}

function render({ model, el }: Pick<RenderProps<InfluenceModel>, "model" | "el">): () => void {
  return mountView(model as AnyModel, el, {
    className: "xw-influence-grid",
    styles: [["influence-grid", CSS]],
    build: (view) => {
      const [controls, syncControls] = buildControls(model);
      const body = h("div", { className: "xw-ig-body" });
      return {
        children: [view.title, view.status!.el, controls, body],
        body,
        before: syncControls,
        draw: () => draw(model, body, view.tooltip),
        bindings: [[REDRAW_ON, view.redraw]],
      };
    },
  });
}

export default { render };
