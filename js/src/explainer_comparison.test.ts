// Render test of the ExplainerComparison ESM with a mock model (happy-dom + mocked canvas):
// columns and rows, the three overlays, placeholders, sorting, and the curve of a clicked score.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget, { type ScoreRow, nextSort, sortRows } from "./explainer_comparison";
import { f32, installCanvasMock, mountWidget, pixels } from "./lib/testing";

const XSS = '<img src=x onerror="window.__xss=1">';
let restore: () => void;
beforeEach(() => (restore = installCanvasMock()));
afterEach(() => {
  restore();
  document.body.innerHTML = "";
});

function u8(values: number[], shape: number[]) {
  const buf = new ArrayBuffer(values.length);
  new Uint8Array(buf).set(values);
  return { view: new DataView(buf), dtype: "uint8", shape };
}

const row = (name: string, deletion: number | null, insertion: number, sanity: boolean | null): ScoreRow => ({
  name, deletion, insertion, mufidelity: 0.5, sparseness: 0.3, sanity, sanity_similarity: 0.2, sanity_note: "note", seconds: 1.25,
});

// 3 explainers (2 done, 1 failed), 2 grey 2x2 images: explainer 0 positive, explainer 1 negative
function state(extra: Record<string, unknown> = {}) {
  const e = 3, n = 2, hw = 4;
  const values: number[] = [];
  for (let k = 0; k < e; k++) for (let p = 0; p < n * hw; p++) values.push(k === 0 ? 1 : k === 1 ? -(p % 4) : NaN);
  const keep: number[] = [];
  for (let k = 0; k < e; k++) for (let p = 0; p < n * hw; p++) keep.push(p % 4 === 0 ? 1 : 0);
  return {
    names: [XSS, "IG", "broken"], shown: [XSS, "IG", "broken"], overlay: "heatmap", keep_fraction: 0.25, scale_mode: "column",
    masker: "blur(2,2)", steps: 20, sanity_stages: 3, sort_by: "", sort_descending: false, curve: {}, cell_size: 40, title: "",
    images: f32([0, 1, 1, 0, 1, 0, 0, 1], [n, 2, 2, 1]),
    row_titles: ["true 7 · 7 0.98", "true 1 · 7 0.60 ✗"],
    columns: [
      { name: XSS, method: "gradcam", status: "done" },
      { name: "IG", method: "integrated_gradients", status: "done" },
      { name: "broken", method: "x", status: "error", message: "ValueError: nope" },
    ],
    values: f32(values, [e, n, 2, 2]),
    scales: f32([1, 1, 3, 3, 1, 1], [e, n]),
    keep: u8(keep, [e, n, 2, 2]),
    scores: [row(XSS, 0.3, 0.6, true), row("IG", 0.1, 0.7, false)],
    curve_x: null, curve_y: null, curve_info: {},
    error: "", progress: -1,
    ...extra,
  };
}

const mount = (extra: Record<string, unknown> = {}) => mountWidget(widget, state(extra));
const cellPixels = (el: HTMLElement, col: number, r = 0) =>
  pixels.get(el.querySelector(`canvas.xw-cmp-canvas[data-col="${col}"][data-row="${r}"]`)!)!;

describe("ExplainerComparison cells", () => {
  it("draws one column per explainer and one row per image, names as text", () => {
    const { el } = mount();
    expect(el.querySelectorAll('canvas.xw-cmp-canvas[data-col="image"]')).toHaveLength(2);
    expect(el.querySelectorAll('canvas.xw-cmp-canvas:not([data-col="image"])')).toHaveLength(4);
    const heads = Array.from(el.querySelectorAll(".xw-cmp-head")).map((x) => x.textContent);
    expect(heads).toEqual(["image", XSS, "IG", "broken"]);
    expect(el.querySelector("img")).toBeNull();
    // the failed column shows its error in place, the others are drawn
    const failed = el.querySelectorAll('.xw-cmp-placeholder[data-status="error"]');
    expect(failed).toHaveLength(2);
    expect(failed[0].textContent).toBe("ValueError: nope");
    expect(el.querySelectorAll(".xw-cbar")).toHaveLength(1);
  });

  it("heat map: positive red, negative blue, on the column's scale", () => {
    const { el } = mount();
    const red = cellPixels(el, 0);
    expect(red[0]).toBeGreaterThan(200);
    expect(red[2]).toBeLessThan(100);
    const blue = cellPixels(el, 1);
    // pixel 0 has value 0 (no colour, light grey), pixel 3 value -3 = -scale (full blue)
    expect(Math.abs(blue[0] - blue[2])).toBeLessThan(3);
    expect(blue[3 * 4 + 2]).toBeGreaterThan(200);
    expect(blue[3 * 4]).toBeLessThan(60);
  });

  it("blend draws over the image itself, mask keeps only the kept pixels", () => {
    const blend = mount({ overlay: "blend" });
    const b = cellPixels(blend.el, 1);
    // pixel 0 (value 0) shows the image unchanged: image pixel 0 of row 0 is 0 (black)
    expect([b[0], b[1], b[2]]).toEqual([0, 0, 0]);
    expect(b[3 * 4 + 2]).toBeGreaterThan(b[3 * 4]); // -scale: blue over the image
    document.body.innerHTML = "";
    const mask = mount({ overlay: "mask" });
    const m = cellPixels(mask.el, 0);
    expect([m[0], m[1], m[2]]).toEqual([0, 0, 0]); // kept: the image (black)
    expect(m[1 * 4]).toBeGreaterThan(200); // not kept: veiled light grey (image pixel is white anyway)
    expect(m[3 * 4]).toBeGreaterThan(150); // not kept, image black: veiled
    expect(mask.el.querySelectorAll(".xw-cbar")).toHaveLength(0); // no attribution colours shown
    expect((mask.el.querySelector(".xw-slider") as HTMLElement).closest("label")!.style.display).toBe("");
  });

  it("columns still computing or queued say so in place; nothing shown draws the images alone", () => {
    const { el, model } = mount({
      columns: [
        { name: XSS, method: "gradcam", status: "done" },
        { name: "IG", method: "integrated_gradients", status: "running" },
        { name: "broken", method: "x", status: "waiting" },
      ],
    });
    const text = (col: number) => el.querySelector(`.xw-cmp-placeholder[data-col="${col}"][data-row="0"]`)!.textContent;
    expect(text(1)).toBe("computing…");
    expect(text(2)).toBe("queued");
    expect(el.querySelectorAll('canvas.xw-cmp-canvas[data-col="0"]')).toHaveLength(2);
    model.set("columns", []);
    model.set("values", null);
    model.set("scales", null);
    model.set("keep", null);
    return Promise.resolve().then(() => {
      expect(el.querySelectorAll("canvas.xw-cmp-canvas")).toHaveLength(2);
      expect(el.querySelectorAll(".xw-cmp-placeholder")).toHaveLength(0);
      expect(el.querySelector(".xw-error")!.getAttribute("style")).toContain("none");
    });
  });

  it("the chooser edits `shown` in the order of `names`", () => {
    const { el, state: s } = mount();
    const box = el.querySelector('input[data-explainer="IG"]') as HTMLInputElement;
    expect(box.checked).toBe(true);
    box.checked = false;
    box.dispatchEvent(new Event("change"));
    expect(s.shown).toEqual([XSS, "broken"]);
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    expect(s.shown).toEqual([XSS, "IG", "broken"]);
  });
});

describe("ExplainerComparison score table", () => {
  it("sorts with missing values last and ties in the given order", () => {
    const rows = [row("a", 0.3, 0.1, true), row("b", null, 0.9, null), row("c", 0.1, 0.5, false), row("d", 0.3, 0.2, true)];
    expect(sortRows(rows, "deletion", false).map((r) => r.name)).toEqual(["c", "a", "d", "b"]);
    expect(sortRows(rows, "deletion", true).map((r) => r.name)).toEqual(["a", "d", "c", "b"]);
    expect(sortRows(rows, "sanity", true).map((r) => r.name)).toEqual(["a", "d", "c", "b"]);
    expect(sortRows(rows, "", false).map((r) => r.name)).toEqual(["a", "b", "c", "d"]);
    // a new column sorts best first; the same column flips
    expect(nextSort("", false, "deletion")).toEqual(["deletion", false]);
    expect(nextSort("deletion", false, "insertion")).toEqual(["insertion", true]);
    expect(nextSort("insertion", true, "insertion")).toEqual(["insertion", false]);
  });

  it("a header click sorts the rows; a score click asks for its curve", async () => {
    const tick = () => Promise.resolve(); // the table redraws once per message (a microtask)
    const { el, state: s } = mount();
    const names = () => Array.from(el.querySelectorAll(".xw-cmp-scores tbody tr")).map((r) => r.getAttribute("data-explainer"));
    expect(names()).toEqual([XSS, "IG"]);
    (el.querySelector('.xw-cmp-scores th[data-key="deletion"]') as HTMLElement).click();
    expect([s.sort_by, s.sort_descending]).toEqual(["deletion", false]);
    await tick();
    expect(names()).toEqual(["IG", XSS]);
    expect(el.querySelector('th[data-key="deletion"]')!.getAttribute("aria-sort")).toBe("ascending");
    (el.querySelector('.xw-cmp-scores th[data-key="deletion"]') as HTMLElement).click();
    await tick();
    expect(names()).toEqual([XSS, "IG"]);
    // best values bold, sanity as words
    expect(el.querySelector('tr[data-explainer="IG"] td[data-key="deletion"] .xw-cmp-best')).not.toBeNull();
    expect(el.querySelector('tr[data-explainer="IG"] td[data-key="sanity"]')!.textContent).toBe("FAILED");
    // sparseness has no curve: plain text; deletion and MuFidelity are buttons
    expect(el.querySelector('td[data-key="sparseness"] button')).toBeNull();
    expect(el.querySelector('td[data-key="mufidelity"] button')).not.toBeNull();
    (el.querySelector('tr[data-explainer="IG"] button[data-metric="deletion"]') as HTMLElement).click();
    expect(s.curve).toEqual({ explainer: "IG", metric: "deletion" });
    await tick();
    expect(el.querySelector('tr[data-explainer="IG"] button[data-metric="deletion"]')!.getAttribute("aria-pressed")).toBe("true");
  });

  it("draws MuFidelity's scatter: one dot per subset", () => {
    const { el, model } = mount();
    model.set("curve_info", { explainer: "IG", metric: "mufidelity", kind: "scatter", area: 0.5, better: "higher" });
    model.set("curve_x", f32([0, 1, 2, 3], [4]));
    model.set("curve_y", f32([0.1, 0.3, 0.2, 0.4], [1, 4]));
    return Promise.resolve().then(() => {
      expect(el.querySelectorAll(".xw-cmp-curve circle.xw-curve-dot")).toHaveLength(4);
      expect(el.querySelectorAll(".xw-cmp-curve polyline")).toHaveLength(0);
      const ys = Array.from(el.querySelectorAll(".xw-cmp-curve circle")).map((c) => Number(c.getAttribute("cy")));
      expect(ys[3]).toBeLessThan(ys[0]); // 0.4 drawn above 0.1
      expect(el.querySelector(".xw-cmp-curve-title")!.textContent).toContain("correlation 0.5");
    });
  });

  it("draws the curves Python sent: the mean thick, one thin line per image", () => {
    const { el, model } = mount();
    model.set("curve_info", { explainer: "IG", metric: "deletion", area: 0.1, better: "lower", x_label: "share hidden", y_label: "probability" });
    model.set("curve_x", f32([0, 0.5, 1], [3]));
    model.set("curve_y", f32([0.9, 0.4, 0.1, 1, 0.5, 0.2, 0.8, 0.3, 0.0], [3, 3]));
    return Promise.resolve().then(() => {
      const lines = el.querySelectorAll(".xw-cmp-curve polyline");
      expect(lines).toHaveLength(3);
      const thick = el.querySelector('.xw-cmp-curve polyline[data-curve="0"]')!;
      expect(thick.getAttribute("stroke-width")).toBe("2");
      const pts = thick.getAttribute("points")!.split(" ").map((p) => p.split(",").map(Number));
      expect(pts).toHaveLength(3);
      expect(pts[0][1]).toBeLessThan(pts[2][1]); // falls: 0.9 is drawn above 0.1
      expect(el.querySelector(".xw-cmp-curve-title")!.textContent).toContain("IG · deletion curve · area 0.1");
    });
  });
});
