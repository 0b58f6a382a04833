// Render test of the ShapleyExplorer ESM with a mock model (happy-dom + mocked canvas).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget, { parseMasker } from "./shapley_explorer";
import { f32, installCanvasMock, mountWidget, pixels } from "./lib/testing";

const XSS = '<img src=x onerror="window.__xss=1">';
let restore: () => void;
beforeEach(() => (restore = installCanvasMock()));
afterEach(() => {
  restore();
  document.body.innerHTML = "";
});

// 2 panels, 2 grey 2x2 images, 2 outputs; panel 0 positive everywhere, panel 1 negative
function state(extra: Record<string, unknown> = {}) {
  const p = 2, n = 2, h = 2, w = 2, o = 2;
  const values: number[] = [];
  for (let q = 0; q < p; q++) for (let k = 0; k < n * h * w * o; k++) values.push(q === 0 ? 1 : -0.5);
  const info = (index: number, correct: boolean) => ({
    index, label: correct ? "Coat" : "Shirt", predicted: "Coat", probability: 0.8, correct,
  });
  return {
    masker: "blur(2,2)", compare: "inpaint_ns", algorithm: "partition", max_evals: 500, top_k: 2,
    indices: [4, 9], deletion_masker: "", cell_size: 40, scale_mode: "grid",
    candidates: f32([0, 1, 1, 0, 1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5], [3, 2, 2, 1]),
    candidate_info: [info(4, true), info(9, false), info(11, true)],
    shown_images: f32([0, 1, 1, 0, 1, 0, 0, 1], [n, h, w, 1]),
    row_info: [info(4, true), info(9, false)],
    values: f32(values, [p, n, h, w, o]),
    output_labels: [[["Coat", XSS], ["Coat", "Bag"]], [["Coat", XSS], ["Coat", "Bag"]]],
    output_probabilities: f32([0.8, 0.1, 0.8, 0.1, 0.8, 0.1, 0.8, 0.1], [p, n, o]),
    panels: [
      { masker: "blur(2,2)", algorithm: "partition", max_evals: 500, area: 0.12, image_areas: [0.1, 0.14], area_masker: "blur(2,2)", curve: [0.8, 0.3, 0.1], seconds: 0.2 },
      { masker: "inpaint_ns", algorithm: "partition", max_evals: 500, area: 0.2, image_areas: [0.2, 0.2], area_masker: "inpaint_ns", curve: [0.8, 0.5, 0.2], seconds: 0.3 },
    ],
    scores: [
      { masker: "blur(2,2)", algorithm: "partition", max_evals: 500, area: 0.12, area_masker: "blur(2,2)", current: true },
      { masker: "inpaint_ns", algorithm: "partition", max_evals: 500, area: 0.2, area_masker: "inpaint_ns", current: true },
      { masker: "constant(0)", algorithm: "permutation", max_evals: 1600, area: 0.3, area_masker: "constant(0)", current: false },
    ],
    stale: false, message: "computed in 0.5 s", image_shape: [2, 2], error: "", progress: -1,
    ...extra,
  };
}

const mount = (extra: Record<string, unknown> = {}) => mountWidget(widget, state(extra));

const button = (root: ParentNode, row: number, value: string) =>
  root.querySelectorAll(".xw-se-controls > .xw-controls")[row].querySelector(`.xw-seg-button[data-value="${value}"]`) as HTMLButtonElement;

describe("parseMasker", () => {
  it("reads the masker strings users know", () => {
    expect(parseMasker("blur(28,28)")).toEqual({ kind: "blur", size: 28, value: null });
    expect(parseMasker("Blur( 3, 5 )").size).toBe(5);
    expect(parseMasker("inpaint_telea").kind).toBe("inpaint_telea");
    expect(parseMasker("inpaint_ns").kind).toBe("inpaint_ns");
    expect(parseMasker("constant(0.5)")).toEqual({ kind: "constant", size: null, value: "0.5" });
    expect(parseMasker("gaussian").kind).toBeNull();
  });
});

describe("ShapleyExplorer render", () => {
  it("draws one grid column block per panel with headers, areas and label rows", () => {
    const { el } = mount();
    const canvases = el.querySelectorAll("canvas.xw-se-canvas");
    expect(canvases.length).toBe(2 + 2 * 2 * 2); // images + panels x rows x outputs
    const heads = Array.from(el.querySelectorAll(".xw-se-head"));
    expect(heads.map((x) => x.querySelector(".xw-se-masker")!.textContent)).toEqual(["blur(2,2)", "inpaint_ns"]);
    expect(heads[0].querySelector(".xw-se-area-value")!.textContent).toBe("0.12");
    expect(heads[0].classList.contains("xw-se-best")).toBe(true); // the lower area
    expect(heads[1].classList.contains("xw-se-best")).toBe(false);
    expect(heads[0].querySelector("svg.xw-sparkline polyline")).not.toBeNull();
    const text = el.textContent ?? "";
    expect(text).toContain(XSS); // shown literally
    expect(el.querySelector("img")).toBeNull();
    const wrong = el.querySelectorAll(".xw-se-image-label.xw-se-wrong");
    expect(wrong.length).toBe(1);
    expect(wrong[0].textContent).toBe("✗ #9 Shirt");
    // colours: panel 0 red (positive), panel 1 blue (negative)
    const px = (q: number) => pixels.get(el.querySelector(`canvas[data-panel="${q}"][data-row="0"][data-col="0"]`)!)!;
    expect(px(0)[0]).toBeGreaterThan(px(0)[2]);
    expect(px(1)[2]).toBeGreaterThan(px(1)[0]);
    expect(el.querySelectorAll(".xw-cbar").length).toBe(1);
    expect(el.querySelector(".xw-se-message")!.textContent).toBe("computed in 0.5 s");
  });

  it("per-row scale draws a colour bar per row; new values redraw", () => {
    const { el, model } = mount();
    model.set("scale_mode", "row");
    expect(el.querySelectorAll(".xw-cbar").length).toBe(2);
    const sel = 'canvas[data-panel="0"][data-row="1"][data-col="1"]';
    const before = pixels.get(el.querySelector(sel)!)!;
    const flipped = Array.from({ length: 2 * 2 * 2 * 2 * 2 }, () => -1);
    model.set("values", f32(flipped, [2, 2, 2, 2, 2]));
    const after = pixels.get(el.querySelector(sel)!)!;
    expect(after[2]).toBeGreaterThan(after[0]);
    expect(before[0]).toBeGreaterThan(before[2]);
  });

  it("masker toggles send the masker string; blur keeps its kernel, constant its value", () => {
    const { el, model, saved } = mount({ compare: "" });
    expect((el.querySelectorAll(".xw-se-controls > .xw-controls")[2] as HTMLElement | undefined)?.style.display ?? "none").toBe("none");
    button(el, 1, "inpaint_telea").click();
    expect(model.get("masker")).toBe("inpaint_telea");
    expect(saved.length).toBe(1);
    button(el, 1, "blur").click();
    expect(model.get("masker")).toBe("blur(2,2)");
    button(el, 1, "constant").click();
    expect(model.get("masker")).toBe("constant(0)");
    expect(button(el, 1, "constant").getAttribute("aria-pressed")).toBe("true");
    const value = el.querySelector(".xw-se-controls .xw-number[step='0.1']") as HTMLInputElement;
    value.value = "0.5";
    value.dispatchEvent(new Event("change"));
    expect(model.get("masker")).toBe("constant(0.5)");
  });

  it("the kernel slider commits on release only", () => {
    const { el, model } = mount();
    const slider = el.querySelector(".xw-se-controls input.xw-slider") as HTMLInputElement;
    slider.value = "1";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("masker")).toBe("blur(2,2)");
    slider.dispatchEvent(new Event("change"));
    expect(model.get("masker")).toBe("blur(1,1)");
  });

  it("side by side, algorithm, max_evals and top-k controls", () => {
    const { el, model } = mount({ compare: "" });
    const side = el.querySelector(".xw-se-side input") as HTMLInputElement;
    side.checked = true;
    side.dispatchEvent(new Event("change"));
    expect(model.get("compare")).toBe("inpaint_telea");
    button(el, 2, "inpaint_ns").click();
    expect(model.get("compare")).toBe("inpaint_ns");
    // switching the algorithm moves max_evals from one default to the other
    button(el, 0, "permutation").click();
    expect([model.get("algorithm"), model.get("max_evals")]).toEqual(["permutation", 1600]);
    const evals = el.querySelector(".xw-number[step='100']") as HTMLInputElement;
    evals.value = "750";
    evals.dispatchEvent(new Event("change"));
    expect(model.get("max_evals")).toBe(750);
    button(el, 0, "partition").click();
    expect(model.get("max_evals")).toBe(750); // not a default: kept
    const topk = el.querySelector(".xw-number[step='1']") as HTMLInputElement;
    topk.value = "abc";
    topk.dispatchEvent(new Event("change"));
    expect(model.get("top_k")).toBe(2);
    expect(topk.value).toBe("2");
  });

  it("the picker toggles images, marks wrong ones and selects a group", () => {
    const { el, model } = mount();
    const chips = Array.from(el.querySelectorAll(".xw-pick-chip")) as HTMLButtonElement[];
    expect(chips.map((c) => c.dataset.index)).toEqual(["4", "11", "9"]); // correct, then wrong
    expect(chips[2].classList.contains("xw-pick-wrong")).toBe(true);
    expect(chips[2].textContent).toBe("Shirt→Coat");
    expect(chips[2].title).toContain("wrong");
    expect(chips.map((c) => c.getAttribute("aria-pressed"))).toEqual(["true", "false", "true"]);
    chips[1].click();
    expect(model.get("indices")).toEqual([4, 9, 11]);
    const again = el.querySelector('.xw-pick-chip[data-index="4"]') as HTMLButtonElement;
    again.click();
    expect(model.get("indices")).toEqual([9, 11]);
    (el.querySelector('[data-action="first-wrong"]') as HTMLButtonElement).click();
    expect(model.get("indices")).toEqual([9]);
    (el.querySelector('.xw-pick-chip[data-index="9"]') as HTMLButtonElement).click();
    expect(model.get("indices")).toEqual([9]); // never empty
  });

  it("pages through the pool and adds an image by its index", () => {
    const { el, model, saved } = mount({ page: 0, pool_size: 1000, has_next_page: true });
    const prev = el.querySelector('[data-action="prev-page"]') as HTMLButtonElement;
    const next = el.querySelector('[data-action="next-page"]') as HTMLButtonElement;
    expect(prev.disabled).toBe(true);
    expect(next.disabled).toBe(false);
    expect(el.querySelector(".xw-se-page")!.textContent).toBe("page 1");
    expect(el.querySelector(".xw-se-pool")!.textContent).toBe("of 1,000 images");
    next.click();
    expect(model.get("page")).toBe(1);
    expect(saved.length).toBe(1);
    expect(el.querySelector(".xw-se-page")!.textContent).toBe("page 2");
    expect(prev.disabled).toBe(false);
    model.set("has_next_page", false); // the kernel found no later page
    expect(next.disabled).toBe(true);
    prev.click();
    expect(model.get("page")).toBe(0);
    // the index entry: a valid index is added to the explained images, once
    const goto = el.querySelector(".xw-se-goto") as HTMLInputElement;
    const enter = () => goto.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    goto.value = "537";
    enter();
    expect(model.get("indices")).toEqual([4, 9, 537]);
    expect(goto.value).toBe("");
    goto.value = "4";
    enter();
    expect(model.get("indices")).toEqual([4, 9, 537]);
    // out of range or not an integer: said on the field, nothing sent
    for (const bad of ["1000", "-1", "2.5"]) {
      goto.value = bad;
      enter();
      expect(goto.getAttribute("aria-invalid")).toBe("true");
      expect(goto.title).toBe(`expected an image index in 0..999, got ${bad}`);
    }
    expect(model.get("indices")).toEqual([4, 9, 537]);
  });

  it("a stale result is dimmed; the score table re-selects a setting", () => {
    const { el, model } = mount();
    const body = el.querySelector(".xw-se-body")!;
    expect(body.classList.contains("xw-se-stale")).toBe(false);
    model.set("stale", true);
    expect(body.classList.contains("xw-se-stale")).toBe(true);
    const rows = el.querySelectorAll(".xw-se-scores tbody tr");
    expect(rows.length).toBe(3);
    expect(rows[0].textContent).toContain("★ blur(2,2)");
    (rows[2] as HTMLElement).click();
    expect([model.get("masker"), model.get("algorithm"), model.get("max_evals")]).toEqual(["constant(0)", "permutation", 1600]);
  });

  it("shows a wait message before the first result and errors in the banner", () => {
    const { el, model } = mount({ values: null, shown_images: null });
    expect(el.querySelector(".xw-se-empty")!.textContent).toContain("computing");
    model.set("error", "ValueError: masker: expected one of ...");
    const banner = el.querySelector(".xw-error") as HTMLElement;
    expect(banner.style.display).toBe("flex");
    expect(banner.textContent).toContain("masker: expected");
  });

  it("a shape mismatch shows in the banner instead of throwing", () => {
    const { el } = mount({ values: f32([1, 2, 3, 4], [1, 1, 2, 2, 1]) });
    expect((el.querySelector(".xw-error") as HTMLElement).style.display).toBe("flex");
    expect(el.querySelector(".xw-error-message")!.textContent).toContain("values");
  });

  it("cleanup removes the view and its listeners", () => {
    const { el, listeners, cleanup } = mount();
    (cleanup as () => void)();
    expect(el.querySelector(".xw-shapley-explorer")).toBeNull();
    const left = [...listeners.values()].reduce((a, s) => a + s.size, 0);
    expect(left).toBe(0);
  });
});
