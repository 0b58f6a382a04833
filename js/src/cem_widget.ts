// CEMWidget: the original image, its pertinent negative (PN) and pertinent positive (PP) side
// by side with their predicted class and probability, each delta below as a diverging map with
// one shared colour bar, and sliders that re-run the search in the kernel. A frame (one search
// update: panels + images + deltas) is drawn only while its generation is the model's current
// one and its settings are the ones on the sliders: a superseded search never draws.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { type NDArray, type SerializedArray, decodeArray } from "./lib/arrays";
import {
  attributionColorbar,
  bindPixelTooltip,
  cellHeight,
  drawAttributionCell,
  drawImageCell,
} from "./lib/attribution_cells";
import { clear, h } from "./lib/dom";
import { type ImageRef, greyLevels } from "./lib/image";
import { cellLabel } from "./lib/labels";
import { type LiveSlider, liveSlider } from "./lib/live_slider";
import { formatNumber, formatSigned, symmetricMax } from "./lib/scale";
import type { TooltipRow } from "./lib/tooltip";
import { mountView } from "./lib/view";
import { saver } from "./lib/model";

export const SETTINGS = ["kappa", "beta", "gamma", "c_init", "max_iterations"] as const;
type Setting = (typeof SETTINGS)[number];

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

export interface Frame {
  generation: number;
  settings: Record<string, number>;
  panels: Panel[];
  images: SerializedArray | null;
  deltas: SerializedArray | null;
}

export interface CEMModel {
  kappa: number;
  beta: number;
  gamma: number;
  c_init: number;
  max_iterations: number;
  modes: string[];
  original: SerializedArray | null;
  original_label: string;
  original_proba: number;
  frame: Partial<Frame>;
  generation: number;
  running: boolean;
  has_autoencoder: boolean;
  ranges: Record<string, number[]>;
  show_advanced: boolean;
  cell_size: number;
  title: string;
  error: string;
  progress: number;
}

const CSS = `
.xw-cem-grid { display: inline-grid; column-gap: 12px; row-gap: 2px; align-items: start; justify-items: center; }
.xw-cem-heading { font-weight: 600; font-size: 11px; text-align: center; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.xw-cem-canvas { display: block; image-rendering: pixelated; cursor: crosshair; background: #fff;
  box-shadow: 0 0 0 1px rgba(127,127,127,.25); transition: opacity .12s linear; }
.xw-cem-stale .xw-cem-canvas { opacity: .6; }
.xw-cem-empty { box-sizing: border-box; display: flex; align-items: center; justify-content: center;
  text-align: center; padding: 6px; border: 1px dashed rgba(127,127,127,.6); border-radius: 3px;
  color: var(--jp-ui-font-color2, #59636e); font-size: 11px; line-height: 1.3; background: rgba(127,127,127,.06); }
.xw-cem-empty[data-status="not_found"] { color: #86181d; border-color: #e3a5a5; background: #fdf3f3; }
.xw-cem-caption { font-size: 10px; line-height: 14px; min-height: 14px; text-align: center;
  color: var(--jp-ui-font-color2, #59636e); white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  font-variant-numeric: tabular-nums; }
.xw-cem-gap { height: 8px; }
.xw-cem-state { font-size: 11px; color: var(--jp-ui-font-color2, #59636e); min-width: 8em; }
.xw-cem-more { border: 1px solid rgba(127,127,127,.45); border-radius: 4px; background: transparent;
  color: inherit; font: inherit; padding: 1px 8px; cursor: pointer; }
.xw-cem-more[aria-expanded="true"] { background: rgba(47,111,223,.12); }
.xw-control-disabled { opacity: .5; }
`;

const MODE_TITLE: Record<string, string> = { PN: "pertinent negative", PP: "pertinent positive" };
const DELTA_TITLE: Record<string, string> = { PN: "added by the PN", PP: "kept by the PP" };
const DELTA_HELP: Record<string, string> = {
  PN: "PN − original: what the PN adds to the image (red: brighter, blue: darker)",
  PP: "the part of the original that the PP keeps (the PP itself)",
};
const FORMATS: Record<Setting, (v: number) => string> = {
  kappa: (v) => v.toFixed(2),
  beta: (v) => v.toFixed(2),
  gamma: (v) => formatNumber(v),
  c_init: (v) => formatNumber(v),
  max_iterations: (v) => String(Math.round(v)),
};
const HELP: Record<Setting, string> = {
  kappa: "confidence margin: how clearly the PN must leave (the PP keep) the class",
  beta: "L1 weight: larger values give sparser deltas",
  gamma: "weight of the autoencoder term (keeps the images close to the data)",
  c_init: "first weight of the attack term (the c search starts here)",
  max_iterations: "optimisation steps per value of c",
};

/** Whether a frame was computed for the settings the model holds now. */
export function isCurrent(model: AnyModel<CEMModel>, frame: Partial<Frame> | null | undefined): boolean {
  if (!frame || frame.generation !== model.get("generation") || !frame.settings) return false;
  return SETTINGS.every((k) => {
    const a = Number(frame.settings![k]);
    const b = Number(model.get(k));
    return a === b || Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
  });
}

interface Decoded {
  h: number;
  w: number;
  c: number;
  original: NDArray;
  images: NDArray | null;
  deltas: NDArray | null;
}

function decode(model: AnyModel<CEMModel>, frame: Partial<Frame> | null): Decoded | null {
  const original = decodeArray(model.get("original"));
  if (!original) return null;
  if (original.shape.length !== 3) {
    throw new Error(`original: expected shape (h, w, c), got [${original.shape.join(", ")}]`);
  }
  const [hh, w, c] = original.shape;
  const check = (name: string, a: NDArray | null, m: number) => {
    if (a && (a.shape.length !== 4 || a.shape[0] !== m || a.shape[1] !== hh || a.shape[2] !== w || a.shape[3] !== c)) {
      throw new Error(`${name}: expected shape (${m}, ${hh}, ${w}, ${c}), got [${a.shape.join(", ")}]`);
    }
    return a;
  };
  const m = frame?.panels?.length ?? 0;
  const images = frame ? check("images", decodeArray(frame.images ?? null), m) : null;
  const deltas = frame ? check("deltas", decodeArray(frame.deltas ?? null), m) : null;
  return { h: hh, w, c, original, images, deltas };
}

/** Delta of panel i summed over channels (one signed value a pixel). */
function summedDelta(d: Decoded, i: number): Float32Array {
  const n = d.h * d.w;
  const out = new Float32Array(n);
  if (!d.deltas) return out;
  const base = i * n * d.c;
  for (let p = 0; p < n; p++) {
    let s = 0;
    for (let ch = 0; ch < d.c; ch++) s += d.deltas.data[base + p * d.c + ch];
    out[p] = s;
  }
  return out;
}

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

/** A found panel kept per mode: drawn (faded) while a newer search has not found one yet. */
interface Kept {
  panel: Panel;
  image: Float32Array;
  sum: Float32Array;
}

function render({ model, el }: Pick<RenderProps<CEMModel>, "model" | "el">): () => void {
  return mountView(model as AnyModel, el, {
    className: "xw-cem",
    styles: [["cem", CSS]],
    build: (view) => {
      const { tooltip } = view;
      const save = saver(model);

      // -- controls: kappa, beta, the advanced toggle, the run state; the advanced row below
      const ranges = () => model.get("ranges") ?? {};
      const sliders = {} as Record<Setting, LiveSlider>;
      for (const k of SETTINGS) {
        const [lo, hi, step] = ranges()[k] ?? [0, 1, 0.01];
        const label = k === "max_iterations" ? "iterations" : k;
        sliders[k] = liveSlider(label, Number(model.get(k)), (v) => save(k, k === "max_iterations" ? Math.round(v) : v), {
          min: lo,
          max: hi,
          step: k === "c_init" ? 0.01 : step,
          log: k === "c_init",
          format: FORMATS[k],
          title: HELP[k],
        });
        sliders[k].el.setAttribute("data-setting", k);
      }
      const more = h("button", {
        className: "xw-cem-more",
        text: "advanced",
        title: "gamma, c_init and the number of iterations",
        attrs: { type: "button" },
      });
      more.addEventListener("click", () => save("show_advanced", !model.get("show_advanced")));
      const state = h("span", { className: "xw-cem-state", attrs: { "aria-live": "polite" } });
      const row1 = h("div", { className: "xw-controls" }, [sliders.kappa.el, sliders.beta.el, more, state]);
      const row2 = h("div", { className: "xw-controls xw-cem-advanced" }, [
        sliders.gamma.el,
        sliders.c_init.el,
        sliders.max_iterations.el,
      ]);
      const syncControls = () => {
        for (const k of SETTINGS) sliders[k].set(Number(model.get(k)));
        sliders.gamma.setDisabled(!model.get("has_autoencoder"), "gamma needs an autoencoder (ae_model=...)");
        const open = Boolean(model.get("show_advanced"));
        row2.style.display = open ? "" : "none";
        more.setAttribute("aria-expanded", String(open));
        more.textContent = open ? "advanced ▴" : "advanced ▾";
        state.textContent = model.get("running") ? "searching…" : "";
      };

      const body = h("div", { className: "xw-cem-body" });

      // the last frame drawn, kept (faded) while a newer search has nothing to show yet
      let drawn: Partial<Frame> | null = null;
      // per mode, the last found picture of a current frame: a new search starts with nothing
      // found, and its panel keeps this picture (faded) until it finds one, never a blank
      const kept = new Map<string, Kept>();

      const draw = () => {
        const frame = model.get("frame") ?? null;
        const current = isCurrent(model, frame);
        if (current) drawn = frame;
        const shown = current ? frame : drawn;
        const d = decode(model, shown && shown.panels ? shown : null);
        clear(body);
        body.removeAttribute("data-generation");
        if (!d) return;
        const stale = !current;
        const cell = Math.max(16, Math.round(Number(model.get("cell_size")) || 112));
        const cellH = cellHeight(cell, d.h, d.w);
        const modes = (model.get("modes") ?? []) as string[];
        const panels = (shown?.panels ?? []) as Panel[];
        const byMode = new Map(panels.map((p, i) => [p.mode as string, i]));
        const orig: ImageRef = { data: d.original.data, offset: 0, h: d.h, w: d.w, c: d.c };
        // the faint copy under the deltas: dark strokes on white (light-on-dark images inverted)
        const levels = greyLevels(orig);
        const grey = greyLevels(orig, levels.reduce((a, b) => a + b, 0) / levels.length < 0.5);
        const sums = panels.map((_, i) => summedDelta(d, i));
        const size = d.h * d.w * d.c;
        // what each mode's column shows: this frame's panel, or the kept picture while searching
        type Shown = { p: Panel | null; image: Float32Array | null; sum: Float32Array | null; faded: boolean; caption: string };
        const columns = new Map<string, Shown>();
        for (const mode of modes) {
          const i = byMode.get(mode);
          const p = i === undefined ? null : panels[i];
          if (p && p.status === "found" && d.images && i !== undefined) {
            const image = d.images.data.subarray(i * size, (i + 1) * size) as Float32Array;
            if (current) kept.set(mode, { panel: p, image: Float32Array.from(image), sum: sums[i] });
            columns.set(mode, { p, image, sum: sums[i], faded: stale, caption: stale ? "updating…" : stepsText(p) });
            continue;
          }
          const k = kept.get(mode);
          if ((!p || p.status === "searching") && k && k.image.length === size) {
            const caption = stale || !p ? "updating…" : stepsText(p);
            columns.set(mode, { p: k.panel, image: k.image, sum: k.sum, faded: true, caption });
            continue;
          }
          columns.set(mode, { p, image: null, sum: null, faded: stale, caption: stale ? "updating…" : p ? stepsText(p) : "" });
        }
        let maxAbs = 0;
        for (const col of columns.values()) if (col.sum) maxAbs = Math.max(maxAbs, symmetricMax(col.sum));
        if (!(maxAbs > 0)) maxAbs = 1;

        const grid = h("div", { className: "xw-cem-grid" });
        // columns as wide as a picture, or as their heading where that is wider (never cut)
        grid.style.gridTemplateColumns = `repeat(${1 + modes.length}, minmax(${cell}px, max-content)) auto`;
        const put = (node: HTMLElement, col: number, row: number) => {
          node.style.gridColumn = String(col);
          node.style.gridRow = String(row);
          grid.appendChild(node);
        };
        const hover = (canvas: HTMLCanvasElement, shownCol: Shown | null, kind: string) => {
          bindPixelTooltip(canvas, tooltip, d.w, d.h, (x, y) => {
            const p = (y * d.w + x) * d.c;
            const rows: TooltipRow[] = [
              ["pixel (x, y)", `(${x}, ${y})`],
              ["original", formatNumber(d.original.data[p])],
            ];
            let heading = "original";
            if (shownCol && shownCol.p && shownCol.image && shownCol.sum) {
              const mode = shownCol.p.mode;
              rows.push([mode, formatNumber(shownCol.image[p])], ["delta", formatSigned(shownCol.sum[y * d.w + x])]);
              heading = kind === "delta" ? DELTA_TITLE[mode] : MODE_TITLE[mode];
            }
            return { rows, title: heading };
          });
        };
        const canvas = (panel: string, kind: string) =>
          h("canvas", { className: "xw-cem-canvas", attrs: { "data-panel": panel, "data-kind": kind } });
        const empty = (text: string, st: string, panel: string, kind: string) =>
          h("div", {
            className: "xw-cem-empty",
            text,
            style: { width: `${cell}px`, height: `${cellH}px` },
            attrs: { "data-status": st, "data-panel": panel, "data-kind": kind },
          });

        // column 1: the original
        put(h("div", { className: "xw-cem-heading", text: "original" }), 1, 1);
        put(cellLabel(model.get("original_label") ?? "", model.get("original_proba")), 1, 2);
        const oc = canvas("original", "image");
        drawImageCell(oc, orig, cell, cellH);
        hover(oc, null, "image");
        put(oc, 1, 3);
        put(h("div", { className: "xw-cem-caption", text: "" }), 1, 4);

        // one column per mode: heading, class label, image (or why not), steps; then the delta
        modes.forEach((mode, j) => {
          const col = j + 2;
          const shownCol = columns.get(mode)!;
          const p = shownCol.p;
          const column = [] as HTMLElement[];
          const heading = h("div", { className: "xw-cem-heading", text: MODE_TITLE[mode] ?? mode, title: mode });
          column.push(heading);
          const label = p && p.status === "found" ? cellLabel(p.label, p.probability) : cellLabel("—", null);
          label.setAttribute("data-panel", mode);
          label.classList.add("xw-cem-class");
          column.push(label);
          let img: HTMLElement;
          let delta: HTMLElement;
          if (shownCol.image && shownCol.sum) {
            const c1 = canvas(mode, "image");
            drawImageCell(c1, { data: shownCol.image, offset: 0, h: d.h, w: d.w, c: d.c }, cell, cellH);
            hover(c1, shownCol, "image");
            const c2 = canvas(mode, "delta");
            drawAttributionCell(c2, { data: shownCol.sum, offset: 0, stride: 1 }, grey, maxAbs, d.w, d.h, cell, cellH);
            hover(c2, shownCol, "delta");
            img = c1;
            delta = c2;
          } else if (p && p.status === "not_found") {
            img = empty(p.message || `no ${mode} found`, "not_found", mode, "image");
            delta = empty("—", "not_found", mode, "delta");
          } else {
            img = empty("searching…", "searching", mode, "image");
            delta = empty("", "searching", mode, "delta");
          }
          column.push(img);
          const caption = h("div", {
            className: "xw-cem-caption",
            text: shownCol.caption,
            title: p && !shownCol.faded ? stepsTitle(p) : shownCol.caption,
            attrs: { "data-panel": mode },
          });
          column.push(caption);
          column.push(h("div", { className: "xw-cem-gap" }));
          column.push(h("div", { className: "xw-cem-heading", text: DELTA_TITLE[mode] ?? "delta", title: DELTA_HELP[mode] ?? "" }));
          column.push(delta);
          column.forEach((node, r) => {
            node.setAttribute("data-col", mode);
            if (shownCol.faded) node.classList.add("xw-cem-stale");
            put(node, col, r + 1);
          });
          if (p) img.setAttribute("data-status", shownCol.faded && shownCol.image ? "kept" : p.status);
        });

        // the colour bar beside the deltas (one scale for both)
        const bar = attributionColorbar(maxAbs, cellH, "delta");
        bar.style.paddingLeft = "4px";
        bar.style.justifySelf = "start";
        if ([...columns.values()].some((col) => col.sum)) put(bar, modes.length + 2, 7);
        body.appendChild(grid);
        if (shown?.generation != null) body.setAttribute("data-generation", String(shown.generation));
        body.setAttribute("data-current", String(current));
      };

      const keys = [...SETTINGS, "frame", "generation", "original", "original_label", "original_proba", "modes", "running",
        "has_autoencoder", "show_advanced", "cell_size", "title"];
      return {
        children: [view.title, view.status!.el, row1, row2, body],
        body,
        before: syncControls,
        draw,
        // several changes of one message (a frame and its generation) draw once
        bindings: [[keys, view.redraw, true]],
      };
    },
  });
}

export default { render };
