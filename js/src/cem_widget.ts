// CEMWidget: the original image, its pertinent negative (PN) and pertinent positive (PP) side
// by side with their predicted class and probability, each delta below as a diverging map with
// one shared colour bar, and sliders that re-run the search in the kernel. A frame (one search
// update: panels + images + deltas) is drawn only while its generation is the model's current
// one and its settings are the ones on the sliders: a superseded search never draws. This
// module: the model, the sliders, which frame and picture each column shows; the drawing of
// the columns is cem/panel_grid.ts.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { type Column, type Decoded, type Panel, drawGrid, stepsText } from "./cem/panel_grid";
import { type NDArray, type SerializedArray, decodeArray } from "./lib/arrays";
import { clear, h } from "./lib/dom";
import { type LiveSlider, liveSlider } from "./lib/live_slider";
import { saver } from "./lib/model";
import { formatNumber } from "./lib/scale";
import { mountView } from "./lib/view";

export type { Panel } from "./cem/panel_grid";
export { stepsText, stepsTitle } from "./cem/panel_grid";

export const SETTINGS = ["kappa", "beta", "gamma", "c_init", "max_iterations"] as const;
type Setting = (typeof SETTINGS)[number];

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

/** A found panel kept per mode: drawn (faded) while a newer search has not found one yet. */
interface Kept {
  panel: Panel;
  image: Float32Array;
  sum: Float32Array;
}

// ---------------------------------------------------------------------------- controls
/** The sliders (kappa, beta; gamma, c_init, iterations behind "advanced"), the toggle, the run state. */
function buildControls(model: AnyModel<CEMModel>): { rows: HTMLElement[]; sync: () => void } {
  const save = saver(model);
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
  const sync = () => {
    for (const k of SETTINGS) sliders[k].set(Number(model.get(k)));
    sliders.gamma.setDisabled(!model.get("has_autoencoder"), "gamma needs an autoencoder (ae_model=...)");
    const open = Boolean(model.get("show_advanced"));
    row2.style.display = open ? "" : "none";
    more.setAttribute("aria-expanded", String(open));
    more.textContent = open ? "advanced ▴" : "advanced ▾";
    state.textContent = model.get("running") ? "searching…" : "";
  };
  return { rows: [row1, row2], sync };
}

// ---------------------------------------------------------------------------- frame update
/**
 * Each mode's column for the shown frame. A found panel is drawn (and, from a current frame,
 * kept); a panel still searching, or missing, shows the kept picture faded; else nothing.
 */
function frameColumns(d: Decoded, modes: string[], panels: Panel[], current: boolean, kept: Map<string, Kept>): Map<string, Column> {
  const stale = !current;
  const byMode = new Map(panels.map((p, i) => [p.mode as string, i]));
  const sums = panels.map((_, i) => summedDelta(d, i));
  const size = d.h * d.w * d.c;
  const columns = new Map<string, Column>();
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
  return columns;
}

// ---------------------------------------------------------------------------- view
function render({ model, el }: Pick<RenderProps<CEMModel>, "model" | "el">): () => void {
  return mountView(model as AnyModel, el, {
    className: "xw-cem",
    styles: [["cem", CSS]],
    build: (view) => {
      const controls = buildControls(model);
      const body = h("div", { className: "xw-cem-body" });
      // the last frame drawn, kept (faded) while a newer search has nothing to show yet
      let drawn: Partial<Frame> | null = null;
      // per mode, the last found picture of a current frame: a new search starts with nothing
      // found, and its panel keeps this picture (faded) until it finds one, never a blank
      const kept = new Map<string, Kept>();

      // draw the model's frame if current, else the last one drawn (faded)
      const draw = () => {
        const frame = model.get("frame") ?? null;
        const current = isCurrent(model, frame);
        if (current) drawn = frame;
        const shown = current ? frame : drawn;
        const d = decode(model, shown && shown.panels ? shown : null);
        clear(body);
        body.removeAttribute("data-generation");
        if (!d) return;
        const modes = (model.get("modes") ?? []) as string[];
        const columns = frameColumns(d, modes, (shown?.panels ?? []) as Panel[], current, kept);
        const opts = {
          cellSize: model.get("cell_size"),
          originalLabel: model.get("original_label") ?? "",
          originalProba: model.get("original_proba"),
          tooltip: view.tooltip,
        };
        body.appendChild(drawGrid(d, modes, columns, opts));
        if (shown?.generation != null) body.setAttribute("data-generation", String(shown.generation));
        body.setAttribute("data-current", String(current));
      };

      const keys = [...SETTINGS, "frame", "generation", "original", "original_label", "original_proba", "modes", "running",
        "has_autoencoder", "show_advanced", "cell_size", "title"];
      return {
        children: [view.title, view.status!.el, ...controls.rows, body],
        body,
        before: controls.sync,
        draw,
        // several changes of one message (a frame and its generation) draw once
        bindings: [[keys, view.redraw, true]],
      };
    },
  });
}

export default { render };
