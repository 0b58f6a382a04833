// Render test of the AttributionGrid ESM with a small mock model (happy-dom + mocked canvas).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget from "./attribution_grid";
import { f32, installCanvasMock, mountWidget, pixels } from "./lib/testing";

let restore: () => void;
beforeEach(() => {
  restore = installCanvasMock();
});
afterEach(() => {
  restore();
  document.body.innerHTML = "";
});

// 2 grey 2x2 images, 2 outputs; row 0 output 0 all positive, output 1 all negative
function gridState(extra: Record<string, unknown> = {}) {
  const n = 2, h = 2, w = 2, o = 2;
  const values: number[] = [];
  for (let i = 0; i < n; i++)
    for (let p = 0; p < h * w; p++) values.push(i === 0 ? 1 : 0.01, i === 0 ? -1 : -0.01);
  return {
    images: f32([0, 0.5, 1, 0.25, 1, 1, 0, 0], [n, h, w, 1]),
    values: f32(values, [n, h, w, o]),
    output_labels: [["Sandal", "<img src=x onerror=\"window.__xss=1\">"], ["Bag", "Coat"]],
    output_probabilities: f32([0.93, 0.05, 0.6, 0.3], [n, o]),
    row_titles: ["label: Sandal", "label: Bag"],
    scale_mode: "grid",
    cell_size: 40,
    invert_image: false,
    show_colorbar: true,
    show_controls: true,
    title: "",
    colorbar_label: "attribution",
    error: "",
    progress: -1,
    ...extra,
  };
}

const render = (state: Record<string, unknown>) => mountWidget(widget, state);

const canvases = (el: HTMLElement) => Array.from(el.querySelectorAll<HTMLCanvasElement>("canvas.xw-ag-canvas"));

describe("AttributionGrid render", () => {
  it("draws one image cell and one cell per output, per row", () => {
    const { el } = render(gridState());
    const cs = canvases(el);
    expect(cs).toHaveLength(2 * 3);
    expect(cs.map((c) => `${c.dataset.row}:${c.dataset.col}`)).toEqual([
      "0:image", "0:0", "0:1", "1:image", "1:0", "1:1",
    ]);
    expect(cs[1].style.width).toBe("40px");
    // row 0: output 0 red, output 1 blue (pixel 0 of the overlay)
    const red = pixels.get(cs[1])!;
    const blue = pixels.get(cs[2])!;
    expect(red[0]).toBeGreaterThan(200);
    expect(red[2]).toBeLessThan(120);
    expect(blue[2]).toBeGreaterThan(200);
    expect(blue[0]).toBeLessThan(60);
  });

  it("labels are text: names, probabilities, row titles; HTML is not parsed", () => {
    const { el } = render(gridState());
    const text = el.textContent ?? "";
    expect(text).toContain("Sandal 0.93");
    expect(text).toContain("label: Bag");
    expect(text).toContain('<img src=x onerror="window.__xss=1">');
    expect(el.querySelector(".xw-ag-grid img")).toBeNull();
  });

  it("grid scale: one colour bar with symmetric numeric ticks; row scale: one per row", () => {
    const { el, model } = render(gridState());
    expect(el.querySelectorAll(".xw-cbar")).toHaveLength(1);
    const ticks = Array.from(el.querySelectorAll(".xw-cbar-tick")).map((t) => Number(t.getAttribute("data-value")));
    expect(Math.min(...ticks)).toBe(-1);
    expect(Math.max(...ticks)).toBe(1);
    expect(ticks).toContain(0);
    // in grid mode row 1 (|v| = 0.01) is nearly transparent
    const faint = pixels.get(canvases(el)[4])!;
    expect(Math.abs(faint[0] - faint[2])).toBeLessThan(10);

    model.set("scale_mode", "row");
    expect(el.querySelectorAll(".xw-cbar")).toHaveLength(2);
    const rowTicks = Array.from(el.querySelectorAll(".xw-cbar")[1].querySelectorAll(".xw-cbar-tick")).map((t) =>
      Number(t.getAttribute("data-value")),
    );
    expect(Math.max(...rowTicks)).toBe(0.01);
    // now row 1 is fully red
    const red = pixels.get(canvases(el)[4])!;
    expect(red[0] - red[2]).toBeGreaterThan(100);
  });

  it("controls write traits back and redraw", () => {
    const { el, saved } = render(gridState());
    const rowButton = el.querySelector<HTMLButtonElement>('.xw-seg-button[data-value="row"]')!;
    rowButton.click();
    expect(saved).toHaveLength(1);
    expect(rowButton.getAttribute("aria-pressed")).toBe("true");
    const slider = el.querySelector<HTMLInputElement>("input.xw-slider")!;
    slider.value = "64";
    slider.dispatchEvent(new Event("input"));
    expect(canvases(el)[0].style.width).toBe("64px");
  });

  it("hover shows pixel, value, attribution and class in the tooltip", () => {
    const { el } = render(gridState());
    const c = canvases(el)[1];
    c.getBoundingClientRect = () => ({ left: 0, top: 0, width: 40, height: 40, right: 40, bottom: 40, x: 0, y: 0, toJSON: () => ({}) });
    c.dispatchEvent(new MouseEvent("mousemove", { clientX: 30, clientY: 5, bubbles: true }));
    const tip = el.querySelector<HTMLElement>(".xw-tooltip")!;
    expect(tip.style.display).toBe("block");
    const text = tip.textContent ?? "";
    expect(text).toContain("(1, 0)");
    expect(text).toContain("0.5"); // pixel value at (1, 0)
    expect(text).toContain("+1"); // attribution
    expect(text).toContain("Sandal 0.93");
    c.dispatchEvent(new MouseEvent("mouseleave"));
    expect(tip.style.display).toBe("none");
  });

  it("shows the error trait in place and a shape mismatch as an error; stays usable", () => {
    const { el, model } = render(gridState({ error: "ValueError: boom <b>x</b>" }));
    const banner = el.querySelector<HTMLElement>(".xw-error")!;
    expect(banner.style.display).toBe("flex");
    expect(banner.textContent).toContain("boom <b>x</b>");
    expect(canvases(el)).toHaveLength(6);
    model.set("error", "");
    expect(banner.style.display).toBe("none");
    model.set("values", f32([1, 2, 3], [1, 1, 3, 1]));
    expect(banner.style.display).toBe("flex");
    expect(banner.textContent).toMatch(/values: expected shape \(2, 2, 2, outputs\)/);
    expect(canvases(el)).toHaveLength(0);
    model.set("values", gridState().values);
    expect(banner.style.display).toBe("none");
    expect(canvases(el)).toHaveLength(6);
  });

  it("RGB images and inverted drawing", () => {
    const rgb = f32([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1], [1, 2, 2, 3]);
    const state = gridState({
      images: rgb,
      values: f32([0, 0, 0, 0], [1, 2, 2, 1]),
      output_labels: [["a"]],
      output_probabilities: null,
      row_titles: [],
    });
    const { el, model } = render(state);
    const img = pixels.get(canvases(el)[0])!;
    expect(Array.from(img.slice(0, 4))).toEqual([255, 0, 0, 255]);
    model.set("invert_image", true);
    const inv = pixels.get(canvases(el)[0])!;
    expect(Array.from(inv.slice(0, 4))).toEqual([0, 255, 255, 255]);
    expect(el.textContent).toContain("a");
  });

  it("cleanup removes the view and its listeners", () => {
    const { el, cleanup, listeners } = render(gridState());
    (cleanup as () => void)();
    expect(el.children).toHaveLength(0);
    for (const set of listeners.values()) expect(set.size).toBe(0);
  });
});
