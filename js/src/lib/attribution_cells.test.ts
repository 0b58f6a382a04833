// The shared attribution-cell helpers: sizes read from CSS, blend / mask pixels, the tooltip
// binding and the colour bar.
import { afterEach, describe, expect, it } from "vitest";
import {
  CELL_SIZE_CSS,
  attributionColorbar,
  bindPixelTooltip,
  blendRGBA,
  cellSizes,
  maskedRGBA,
  pixelRows,
  stackLength,
} from "./attribution_cells";
import { fakeBox } from "./testing";
import { Tooltip } from "./tooltip";

afterEach(() => {
  document.body.innerHTML = "";
});

describe("cell sizes", () => {
  it("are declared once as CSS custom properties and read back from the computed style", () => {
    expect(CELL_SIZE_CSS).toContain("--xw-label-height: 16px;");
    expect(cellSizes(null)).toEqual({ labelHeight: 16, rowGap: 8 }); // not in a document
    const root = document.createElement("div");
    root.style.setProperty("--xw-label-height", "22px");
    document.body.appendChild(root);
    const sizes = cellSizes(root);
    expect(sizes.labelHeight).toBe(22); // the CSS wins
    expect(sizes.rowGap).toBe(8);
    expect(stackLength(3, 40, sizes)).toBe(3 * 40 + 2 * (8 + 22));
  });
});

describe("overlay pixels", () => {
  const image = new Uint8ClampedArray([0, 0, 0, 255, 200, 200, 200, 255]);
  it("blend composites the diverging map over the image, unchanged where the value is 0", () => {
    const out = blendRGBA({ data: new Float32Array([0, 2]), offset: 0, stride: 1 }, image, 2, 0.5);
    expect(Array.from(out.slice(0, 4))).toEqual([0, 0, 0, 255]);
    // value = +max: red at alpha 0.5 over grey 200
    expect(out[4]).toBe(Math.round(232 * 0.5 + 200 * 0.5));
    expect(out[6]).toBe(Math.round(72 * 0.5 + 200 * 0.5));
  });
  it("mask keeps the kept pixels and veils the others", () => {
    const out = maskedRGBA(image, new Uint8Array([9, 1, 0]), 1, 1);
    expect(Array.from(out.slice(0, 4))).toEqual([0, 0, 0, 255]);
    expect(Array.from(out.slice(4, 8))).toEqual([235, 235, 235, 255]);
  });
});

describe("pixel tooltip and colour bar", () => {
  it("shows the described rows of the pixel under the mouse, as text", () => {
    const root = document.createElement("div");
    document.body.appendChild(root);
    const tooltip = new Tooltip(root);
    const canvas = document.createElement("canvas");
    root.appendChild(canvas);
    fakeBox(canvas, 40, 40);
    const img = { data: new Float32Array([0, 0.25, 0.5, 0.75]), offset: 0, h: 2, w: 2, c: 1 };
    bindPixelTooltip(canvas, tooltip, 2, 2, (x, y) => ({ rows: pixelRows(img, x, y), title: "<b>t</b>" }));
    canvas.dispatchEvent(new MouseEvent("mousemove", { clientX: 30, clientY: 30 }));
    expect(tooltip.el.style.display).toBe("block");
    expect(tooltip.el.textContent).toContain("(1, 1)");
    expect(tooltip.el.textContent).toContain("0.75");
    expect(tooltip.el.querySelector("b")).toBeNull();
    canvas.dispatchEvent(new MouseEvent("mouseleave"));
    expect(tooltip.el.style.display).toBe("none");
  });
  it("the colour bar spans -max..max with the label band above", () => {
    const bar = attributionColorbar(0.5, 100, "attribution", { top: 16, className: "x" });
    const ticks = Array.from(bar.querySelectorAll(".xw-cbar-tick")).map((t) => Number(t.getAttribute("data-value")));
    expect(Math.min(...ticks)).toBe(-0.5);
    expect(Math.max(...ticks)).toBe(0.5);
    expect(bar.style.paddingTop).toBe("16px");
    expect(bar.classList.contains("x")).toBe(true);
  });
});
