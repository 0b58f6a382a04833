// Render tests of the InfluenceGrid ESM with a mock model (happy-dom + mocked canvas).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget, { gridColumns } from "./influence_grid";
import { f32, fakeBox, installCanvasMock, mountWidget, pixels } from "./lib/testing";

const XSS = '<img src=x onerror="window.__xss=1">';

let restore: () => void;
beforeEach(() => {
  restore = installCanvasMock();
});
afterEach(() => {
  restore();
  document.body.innerHTML = "";
});

// 3 maps of 2x2 pixels: class 0 all +0.5, class 1 all -0.25, class 2 only pixel (1, 0) = +0.1
function state(extra: Record<string, unknown> = {}) {
  return {
    maps: f32([0.5, 0.5, 0.5, 0.5, -0.25, -0.25, -0.25, -0.25, 0, 0.1, 0, 0], [3, 2, 2]),
    class_names: ["zero", "one", XSS],
    mean_image: f32([0, 0.2, 0.8, 1], [2, 2, 1]),
    base_values: f32([0.5, 0.3, 0.2], [3]),
    cell_size: 40,
    columns: 0,
    show_mean_image: true,
    selected: -1,
    detail_width: 120,
    title: "Influence",
    colorbar_label: "Δ probability",
    value_label: "influence",
    base_label: "mean probability",
    show_controls: true,
    error: "",
    progress: -1,
    ...extra,
  };
}

const render = (s: Record<string, unknown>) => mountWidget(widget, s);

const maps = (el: HTMLElement) => Array.from(el.querySelectorAll<HTMLCanvasElement>(".xw-ig-grid canvas.xw-ig-canvas"));

describe("InfluenceGrid render", () => {
  it("draws one map per class on one symmetric scale, titles as text", () => {
    const { el } = render(state());
    const cs = maps(el);
    expect(cs.map((c) => c.dataset.class)).toEqual(["0", "1", "2"]);
    expect(cs[0].style.width).toBe("40px");
    const red = pixels.get(cs[0])!;
    const blue = pixels.get(cs[1])!;
    expect(red[0] - red[2]).toBeGreaterThan(100); // +0.5 = the scale's maximum: full red
    expect(blue[2] - blue[0]).toBeGreaterThan(40); // -0.25: half-strength blue
    expect(blue[2] - blue[0]).toBeLessThan(red[0] - red[2]);
    const titles = Array.from(el.querySelectorAll(".xw-ig-cell .xw-label")).map((t) => t.textContent);
    expect(titles).toEqual(["zero", "one", XSS]);
    expect(el.querySelector(".xw-ig-grid img")).toBeNull();
    expect(el.querySelectorAll(".xw-cbar")).toHaveLength(1);
    const ticks = Array.from(el.querySelectorAll(".xw-cbar-tick")).map((t) => Number(t.getAttribute("data-value")));
    expect(Math.min(...ticks)).toBeCloseTo(-0.5);
    expect(Math.max(...ticks)).toBeCloseTo(0.5);
    expect(el.querySelector(".xw-title")!.textContent).toBe("Influence");
  });

  it("hover reads out the pixel, the value, the mean pixel and the base value", () => {
    const { el } = render(state());
    const c = maps(el)[2];
    fakeBox(c, 40, 40);
    c.dispatchEvent(new MouseEvent("mousemove", { clientX: 30, clientY: 5, bubbles: true }));
    const tip = el.querySelector<HTMLElement>(".xw-tooltip")!;
    expect(tip.style.display).toBe("block");
    const text = tip.textContent ?? "";
    expect(text).toContain(XSS); // heading, as text
    expect(text).toContain("(1, 0)");
    expect(text).toContain("influence+0.1");
    expect(text).toContain("mean pixel0.2");
    expect(text).toContain("mean probability0.2");
  });

  it("a click opens the class large beside the mean image; a second click closes it", () => {
    const { el, model, saved } = render(state());
    el.querySelector<HTMLElement>('.xw-ig-cell[data-class="1"]')!.click();
    expect(model.get("selected")).toBe(1);
    expect(saved).toHaveLength(1);
    const detail = el.querySelector<HTMLElement>(".xw-ig-detail")!;
    expect(detail.querySelector(".xw-ig-detail-title")!.textContent).toBe("one");
    const big = detail.querySelector<HTMLCanvasElement>("canvas.xw-ig-detail-map")!;
    expect(big.style.width).toBe("120px");
    const mean = pixels.get(detail.querySelector("canvas.xw-ig-detail-mean")!)!;
    expect(Array.from(mean.slice(0, 4))).toEqual([0, 0, 0, 255]); // mean image pixel 0 = min
    expect(el.querySelector('.xw-ig-cell[data-class="1"]')!.classList.contains("xw-ig-selected")).toBe(true);
    el.querySelector<HTMLElement>('.xw-ig-cell[data-class="1"]')!.click();
    expect(model.get("selected")).toBe(-1);
    expect(el.querySelector(".xw-ig-detail")).toBeNull();
    model.set("selected", 2); // from Python
    el.querySelector<HTMLButtonElement>(".xw-ig-detail-close")!.click();
    expect(model.get("selected")).toBe(-1);
  });

  it("cell width slider and mean-image toggle write back and redraw", () => {
    const { el, model } = render(state());
    const slider = el.querySelector<HTMLInputElement>("input.xw-slider")!;
    slider.value = "88";
    slider.dispatchEvent(new Event("input"));
    expect(model.get("cell_size")).toBe(88);
    expect(maps(el)[0].style.width).toBe("88px");
    // with the underlay, a zero pixel of class 2 is tinted grey where the mean image is dark
    const withMean = pixels.get(maps(el)[2])!;
    const box = el.querySelector<HTMLInputElement>('.xw-controls input[type="checkbox"]')!;
    box.checked = false;
    box.dispatchEvent(new Event("change"));
    expect(model.get("show_mean_image")).toBe(false);
    const plain = pixels.get(maps(el)[2])!;
    expect(Array.from(plain.slice(8, 12))).toEqual([255, 255, 255, 255]); // pixel (0, 1): white
    expect(withMean[8]).toBeLessThan(255);
  });

  it("shape mismatches show in place; the view recovers; cleanup removes listeners", () => {
    const { el, model, cleanup, listeners } = render(state());
    model.set("mean_image", f32([1, 2, 3], [1, 3, 1]));
    const banner = el.querySelector<HTMLElement>(".xw-error")!;
    expect(banner.style.display).toBe("flex");
    expect(banner.textContent).toMatch(/mean_image: expected shape \(2, 2, c\)/);
    expect(maps(el)).toHaveLength(0);
    model.set("mean_image", null);
    expect(banner.style.display).toBe("none");
    expect(maps(el)).toHaveLength(3);
    (cleanup as () => void)();
    expect(el.children).toHaveLength(0);
    for (const set of listeners.values()) expect(set.size).toBe(0);
  });

  it("lays out at most 5 maps per row, evenly", () => {
    expect([1, 3, 5, 6, 7, 10, 11].map((k) => gridColumns(k, 0))).toEqual([1, 3, 5, 3, 4, 5, 4]);
    expect(gridColumns(10, 2)).toBe(2);
    expect(gridColumns(3, 8)).toBe(3);
  });
});
