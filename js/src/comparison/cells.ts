// The ExplainerComparison's cells: the decoded arrays (images, maps, colour scales, kept
// pixels) and the grid of one row per image, one column per explainer, in the overlay chosen
// (heat map, blended, masked), with a placeholder for a column not computed and one colour bar.
import type { AnyModel } from "@anywidget/types";
import { type NDArray, decodeArray } from "../lib/arrays";
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
} from "../lib/attribution_cells";
import { clear, h } from "../lib/dom";
import { type ImageRef, drawRGBA, greyLevels, imageRGBA } from "../lib/image";
import { cellLabel } from "../lib/labels";
import { formatNumber, formatSigned } from "../lib/scale";
import type { Tooltip } from "../lib/tooltip";
import type { ComparisonModel } from "./model";

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

export function drawCells(model: AnyModel<ComparisonModel>, body: HTMLElement, tooltip: Tooltip): void {
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
