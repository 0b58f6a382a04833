// AttributionGrid: rows = images; the first column shows the image, then one column per
// explained output, its attribution map drawn with a diverging colour map over a faint grey
// copy of the image. A label (class name + probability) sits above each output cell.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { type NDArray, type SerializedArray, decodeArray } from "./lib/arrays";
import { diverging } from "./lib/colormap";
import { createColorbar } from "./lib/colorbar";
import { checkbox, segmented, slider } from "./lib/controls";
import { clear, h } from "./lib/dom";
import { type ImageRef, drawRGBA, greyLevels, imageRGBA, overlayRGBA, pixelAt } from "./lib/image";
import { cellLabel, labelText } from "./lib/labels";
import { formatNumber, formatSigned, symmetricMax } from "./lib/scale";
import type { Tooltip, TooltipRow } from "./lib/tooltip";
import { mountView } from "./lib/view";

export interface GridModel {
  images: SerializedArray | null;
  values: SerializedArray | null;
  output_labels: string[][];
  output_probabilities: SerializedArray | null;
  row_titles: string[];
  scale_mode: "grid" | "row";
  cell_size: number;
  invert_image: boolean;
  show_colorbar: boolean;
  show_controls: boolean;
  title: string;
  colorbar_label: string;
  error: string;
  progress: number;
  [key: string]: unknown;
}

const GRID_CSS = `
.xw-ag-grid { display: grid; column-gap: 4px; row-gap: 10px; align-items: start; }
.xw-ag-cell { display: flex; flex-direction: column; }
.xw-ag-canvas { display: block; image-rendering: pixelated; cursor: crosshair; background: #fff;
  box-shadow: 0 0 0 1px rgba(127,127,127,.25); }
.xw-ag-image-label { font-weight: 600; }
.xw-ag-cbar { padding-left: 8px; }
`;

const LABEL_HEIGHT = 16; // keep equal to .xw-label height
const ROW_GAP = 10; // keep equal to .xw-ag-grid row-gap
const REDRAW_ON = [
  "images",
  "values",
  "output_labels",
  "output_probabilities",
  "row_titles",
  "scale_mode",
  "cell_size",
  "invert_image",
  "show_colorbar",
  "show_controls",
  "title",
  "colorbar_label",
];

interface Decoded {
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
function decodeGrid(model: AnyModel<GridModel>): Decoded | null {
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

/** max |value| per row (scale "row") or one for the whole grid (scale "grid"). */
function scales(d: Decoded, mode: string): number[] {
  const rowSize = d.h * d.w * d.o;
  if (mode === "row") {
    return Array.from({ length: d.n }, (_, i) => symmetricMax(d.values.data, i * rowSize, (i + 1) * rowSize));
  }
  const m = symmetricMax(d.values.data);
  return Array.from({ length: d.n }, () => m);
}

function pixelValue(img: ImageRef, x: number, y: number): string {
  const k = img.offset + (y * img.w + x) * img.c;
  if (img.c === 1) return formatNumber(img.data[k]);
  const parts: string[] = [];
  for (let ch = 0; ch < Math.min(img.c, 4); ch++) parts.push(formatNumber(img.data[k + ch]));
  return parts.join(", ");
}

function drawGrid(model: AnyModel<GridModel>, body: HTMLElement, tooltip: Tooltip): void {
  clear(body);
  const d = decodeGrid(model);
  if (!d) return;
  const cell = Math.max(8, Math.round(Number(model.get("cell_size")) || 84));
  const cellH = Math.max(1, Math.round((cell * d.h) / d.w));
  const mode = model.get("scale_mode") === "row" ? "row" : "grid";
  const invert = Boolean(model.get("invert_image"));
  const showBar = model.get("show_colorbar") !== false;
  const labels = model.get("output_labels") ?? [];
  const titles = model.get("row_titles") ?? [];
  const caption = model.get("colorbar_label") ?? "";
  const maxes = scales(d, mode);

  const grid = h("div", { className: "xw-ag-grid" });
  grid.style.gridTemplateColumns = `repeat(${1 + d.o}, ${cell}px)${showBar ? " auto" : ""}`;
  const hover = (canvas: HTMLCanvasElement, img: ImageRef, i: number, j: number) => {
    canvas.addEventListener("mousemove", (ev) => {
      const p = pixelAt(canvas, ev.clientX, ev.clientY, d.w, d.h);
      if (!p) return tooltip.hide();
      const [x, y] = p;
      const rows: TooltipRow[] = [
        ["pixel (x, y)", `(${x}, ${y})`],
        ["pixel value", pixelValue(img, x, y)],
      ];
      let heading = titles[i] ?? `image ${i}`;
      if (j >= 0) {
        const v = d.values.data[((i * d.h + y) * d.w + x) * d.o + j];
        const name = labels[i]?.[j] ?? `output ${j}`;
        rows.push(["attribution", formatSigned(v)]);
        rows.push(["class", labelText(name, d.probs?.data[i * d.o + j])]);
        heading = name;
      }
      tooltip.show(ev.clientX, ev.clientY, rows, heading);
    });
    canvas.addEventListener("mouseleave", () => tooltip.hide());
  };

  for (let i = 0; i < d.n; i++) {
    const img: ImageRef = { data: d.images.data, offset: i * d.h * d.w * d.c, h: d.h, w: d.w, c: d.c };
    const imageCanvas = h("canvas", {
      className: "xw-ag-canvas",
      attrs: { "data-row": String(i), "data-col": "image" },
    });
    drawRGBA(imageCanvas, imageRGBA(img, invert), d.w, d.h, cell, cellH);
    hover(imageCanvas, img, i, -1);
    const title = titles[i] ?? "";
    grid.appendChild(
      h("div", { className: "xw-ag-cell" }, [cellLabel(title, null, "xw-label xw-ag-image-label"), imageCanvas]),
    );
    const grey = greyLevels(img, invert);
    for (let j = 0; j < d.o; j++) {
      const canvas = h("canvas", {
        className: "xw-ag-canvas",
        attrs: { "data-row": String(i), "data-col": String(j) },
      });
      const rgba = overlayRGBA(
        { data: d.values.data, offset: i * d.h * d.w * d.o + j, stride: d.o },
        grey,
        maxes[i],
      );
      drawRGBA(canvas, rgba, d.w, d.h, cell, cellH);
      hover(canvas, img, i, j);
      const name = labels[i]?.[j] ?? String(j);
      const prob = d.probs ? d.probs.data[i * d.o + j] : null;
      grid.appendChild(h("div", { className: "xw-ag-cell" }, [cellLabel(name, prob), canvas]));
    }
    if (showBar && mode === "row") {
      const bar = colorbar(maxes[i], cellH, i === d.n - 1 ? caption : "");
      bar.style.gridColumn = String(d.o + 2);
      bar.style.gridRow = String(i + 1);
      grid.appendChild(bar);
    }
  }
  if (showBar && mode === "grid") {
    const length = d.n * cellH + (d.n - 1) * (ROW_GAP + LABEL_HEIGHT);
    const bar = colorbar(maxes[0], length, caption);
    bar.style.gridColumn = String(d.o + 2);
    bar.style.gridRow = `1 / span ${d.n}`;
    grid.appendChild(bar);
  }
  body.appendChild(grid);
}

function colorbar(maxAbs: number, length: number, caption: string): HTMLElement {
  const bar = createColorbar({
    lo: -maxAbs,
    hi: maxAbs,
    colorOf: (v) => diverging(v / maxAbs),
    length,
    caption,
  });
  bar.classList.add("xw-ag-cbar");
  bar.style.paddingTop = `${LABEL_HEIGHT}px`;
  return bar;
}

function buildControls(model: AnyModel<GridModel>): [HTMLElement, () => void] {
  const save = (key: string, value: unknown) => {
    model.set(key, value as never);
    model.save_changes();
  };
  const scale = segmented(
    "scale",
    [
      { value: "grid", text: "grid", title: "one colour scale for the whole grid" },
      { value: "row", text: "per row", title: "one colour scale per image" },
    ],
    model.get("scale_mode"),
    (v) => save("scale_mode", v),
  );
  const size = slider("cell size", 24, 256, 4, model.get("cell_size"), (v) => save("cell_size", v), (v) => `${v}px`);
  const invert = checkbox("invert image", model.get("invert_image"), (v) => save("invert_image", v));
  const el = h("div", { className: "xw-controls" }, [scale.el, size.el, invert.el]);
  const sync = () => {
    scale.set(model.get("scale_mode"));
    size.set(model.get("cell_size"));
    invert.set(model.get("invert_image"));
    el.style.display = model.get("show_controls") === false ? "none" : "";
  };
  sync();
  return [el, sync];
}

function render({ model, el }: Pick<RenderProps<GridModel>, "model" | "el">): () => void {
  return mountView(model as AnyModel, el, {
    className: "xw-attribution-grid",
    styles: [["attribution-grid", GRID_CSS]],
    build: (view) => {
      const [controls, syncControls] = buildControls(model);
      const body = h("div", { className: "xw-ag-body" });
      return {
        children: [view.title, view.status!.el, controls, body],
        body,
        before: syncControls,
        draw: () => drawGrid(model, body, view.tooltip),
        bindings: [[REDRAW_ON, view.redraw]],
      };
    },
  });
}

export default { render };
