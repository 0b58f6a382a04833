// ExplainerComparison: one column per explainer, one row per image (attribution cells in
// three overlays), a chooser of the explainers shown, and a score table that sorts by a click
// on a header; a click on a deletion, insertion or sanity score shows its curves. Python
// computes every number (maps, colour scales, kept pixels, scores, curves); this only draws.
// Here: the controls and the view; the cells, the score table with its curves and the model
// interface are in comparison/.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { drawCells } from "./comparison/cells";
import type { ComparisonModel } from "./comparison/model";
import { drawCurve, drawScores } from "./comparison/scores";
import { segmented, slider } from "./lib/controls";
import { clear, h } from "./lib/dom";
import { saver } from "./lib/model";
import { mountView } from "./lib/view";

export { decode } from "./comparison/cells";
export type { Column, ComparisonModel, CurveInfo } from "./comparison/model";
export { type ScoreRow, nextSort, sortRows } from "./lib/score_columns";

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
