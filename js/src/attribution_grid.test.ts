// Render test of the AttributionGrid ESM with a small mock model (happy-dom + mocked canvas).
// Each row is one canvas: the mock (lib/row_canvas_mock.ts) records every cell drawn into it
// (the cell's pixels and where they went) and every frame stroked around a cell. The layout
// arithmetic is tested in lib/grid_layout.test.ts.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import widget from "./attribution_grid";
import { CELL_GAP, LABEL_HEIGHT, LABEL_HEIGHT_2 } from "./lib/grid_layout";
import { blits, cellEl, cellPixels, installRowCanvasMock, rowCanvases, strokes } from "./lib/row_canvas_mock";
import { f32, mountWidget } from "./lib/testing";

let restore: () => void;
beforeEach(() => {
  restore = installRowCanvasMock();
});
afterEach(() => {
  restore();
  document.body.innerHTML = "";
});

const frame = () => new Promise<void>((r) => requestAnimationFrame(() => r()));

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


describe("AttributionGrid render", () => {
  it("draws each row on one canvas: the image cell and one cell per output", () => {
    const { el } = render(gridState());
    const rows = rowCanvases(el);
    expect(rows).toHaveLength(2);
    expect(el.querySelectorAll("canvas")).toHaveLength(2 + 1); // + the colour bar
    const cells = Array.from(el.querySelectorAll<HTMLElement>(".xw-ag-cell"));
    expect(cells.map((c) => `${c.dataset.row}:${c.dataset.col}`)).toEqual([
      "0:image", "0:0", "0:1", "1:image", "1:0", "1:1",
    ]);
    expect(cells[1].style.width).toBe("40px");
    expect(blits.get(rows[0])).toHaveLength(3);
    expect(rows[1].getAttribute("aria-label")).toBe("label: Bag: the image and 2 attribution maps");
    // row 0: output 0 red, output 1 blue (pixel 0 of the overlay)
    const red = cellPixels(el, 0, 0)!;
    const blue = cellPixels(el, 0, 1)!;
    expect(red[0]).toBeGreaterThan(200);
    expect(red[2]).toBeLessThan(120);
    expect(blue[2]).toBeGreaterThan(200);
    expect(blue[0]).toBeLessThan(60);
    // cells sit side by side at the cell size (after a 3 px margin for frames), labels above:
    // two lines (name, probability) as 40 px cells are too narrow for "Sandal 0.93"
    const blit = blits.get(rows[0])!;
    expect(blit.map((b) => [b.x, b.y, b.w, b.h])).toEqual([
      [3, LABEL_HEIGHT_2, 40, 40],
      [3 + 40 + CELL_GAP, LABEL_HEIGHT_2, 40, 40],
      [3 + 2 * (40 + CELL_GAP), LABEL_HEIGHT_2, 40, 40],
    ]);
    const label = el.querySelector<HTMLElement>(".xw-ag-row .xw-label:not(.xw-ag-image-label)")!;
    expect(label.classList.contains("xw-ag-label-2")).toBe(true);
    expect(label.style.top).toBe(`-${LABEL_HEIGHT_2}px`); // above its cell, inside the cell's frame
    expect(label.parentElement!.classList.contains("xw-ag-cell")).toBe(true);
  });

  it("labels are text: names, probabilities, row titles; HTML is not parsed", () => {
    const { el } = render(gridState());
    const text = el.textContent ?? "";
    expect(text).toContain("Sandal 0.93");
    expect(text).toContain("label: Bag");
    expect(text).toContain('<img src=x onerror="window.__xss=1">');
    expect(el.querySelector(".xw-ag-layout img")).toBeNull();
    // the full text of every label is its title (shown on hover where the cell cuts it)
    const titles = Array.from(el.querySelectorAll<HTMLElement>(".xw-label")).map((l) => l.title);
    expect(titles).toContain("Sandal 0.93");
    expect(titles).toContain('<img src=x onerror="window.__xss=1"> 0.05');
  });

  it("grid scale: one colour bar with symmetric numeric ticks; row scale: one per row", async () => {
    const { el, model } = render(gridState());
    expect(el.querySelectorAll(".xw-cbar")).toHaveLength(1);
    const ticks = Array.from(el.querySelectorAll(".xw-cbar-tick")).map((t) => Number(t.getAttribute("data-value")));
    expect(Math.min(...ticks)).toBe(-1);
    expect(Math.max(...ticks)).toBe(1);
    expect(ticks).toContain(0);
    // in grid mode row 1 (|v| = 0.01) is nearly transparent
    const faint = cellPixels(el, 1, 0)!;
    expect(Math.abs(faint[0] - faint[2])).toBeLessThan(10);

    const placeholder = el.querySelector(".xw-ag-row[data-row='0']");
    model.set("scale_mode", "row");
    await frame();
    expect(el.querySelectorAll(".xw-cbar")).toHaveLength(2);
    const rowTicks = Array.from(el.querySelectorAll(".xw-cbar")[1].querySelectorAll(".xw-cbar-tick")).map((t) =>
      Number(t.getAttribute("data-value")),
    );
    expect(Math.max(...rowTicks)).toBe(0.01);
    // now row 1 is fully red
    const red = cellPixels(el, 1, 0)!;
    expect(red[0] - red[2]).toBeGreaterThan(100);
    // a colour change repaints the rows in place: the row placeholders are the same elements
    expect(el.querySelector(".xw-ag-row[data-row='0']")).toBe(placeholder);
  });

  it("changes in one frame draw once (a dragged slider does not queue redraws)", async () => {
    const { el, model } = render(gridState());
    const first = rowCanvases(el)[0];
    for (const size of [44, 48, 52, 56, 60]) model.set("cell_size", size);
    model.set("scale_mode", "row");
    expect(rowCanvases(el)[0]).toBe(first); // nothing drawn yet
    await frame();
    const now = rowCanvases(el)[0];
    expect(now).not.toBe(first);
    expect(blits.get(now)).toHaveLength(3); // drawn once at the last size
    expect(cellEl(el, 0, "image")!.style.width).toBe("60px");
    expect(el.querySelectorAll(".xw-cbar")).toHaveLength(2);
  });

  it("controls write traits back and redraw", async () => {
    const { el, saved } = render(gridState());
    const rowButton = el.querySelector<HTMLButtonElement>('.xw-seg-button[data-value="row"]')!;
    rowButton.click();
    expect(saved).toHaveLength(1);
    await frame();
    expect(rowButton.getAttribute("aria-pressed")).toBe("true");
    const slider = el.querySelector<HTMLInputElement>("input.xw-slider")!;
    slider.value = "64";
    slider.dispatchEvent(new Event("input"));
    await frame();
    expect(cellEl(el, 0, "image")!.style.width).toBe("64px");
    const fit = el.querySelector<HTMLButtonElement>(".xw-ag-fit")!;
    expect(fit.getAttribute("aria-pressed")).toBe("false");
    fit.click(); // back to the automatic size: 2 px images -> 84 px cells (no width limit here)
    await frame();
    expect(fit.getAttribute("aria-pressed")).toBe("true");
    expect(cellEl(el, 0, "image")!.style.width).toBe("84px");
    expect(slider.value).toBe("84");
  });

  it("hover shows pixel, value, attribution and class in the tooltip", () => {
    const { el } = render(gridState());
    const c = rowCanvases(el)[0];
    const w = parseFloat(c.style.width);
    const hh = parseFloat(c.style.height);
    c.getBoundingClientRect = () =>
      ({ left: 0, top: 0, width: w, height: hh, right: w, bottom: hh, x: 0, y: 0, toJSON: () => ({}) }) as DOMRect;
    // pixel (1, 0) of cell "Sandal" (column 1 of the row): x = 3 + 46 + 30, y = 16 + 5
    c.dispatchEvent(new MouseEvent("mousemove", { clientX: 3 + 40 + CELL_GAP + 30, clientY: LABEL_HEIGHT_2 + 5, bubbles: true }));
    const tip = el.querySelector<HTMLElement>(".xw-tooltip")!;
    expect(tip.style.display).toBe("block");
    const text = tip.textContent ?? "";
    expect(text).toContain("(1, 0)");
    expect(text).toContain("0.5"); // pixel value at (1, 0)
    expect(text).toContain("+1"); // attribution
    expect(text).toContain("Sandal 0.93");
    // in the gap between two cells: no tooltip
    c.dispatchEvent(new MouseEvent("mousemove", { clientX: 3 + 40 + 2, clientY: LABEL_HEIGHT_2 + 5, bubbles: true }));
    expect(tip.style.display).toBe("none");
    c.dispatchEvent(new MouseEvent("mousemove", { clientX: 3 + 30, clientY: LABEL_HEIGHT_2 + 5, bubbles: true }));
    expect(tip.style.display).toBe("block");
    c.dispatchEvent(new MouseEvent("mouseleave"));
    expect(tip.style.display).toBe("none");
  });

  it("marks the true label's column and says when the prediction is wrong", () => {
    const { el } = render(
      gridState({ true_columns: [0, -1], wrong_rows: [false, true], predicted_names: ["Sandal", "Coat"] }),
    );
    const rows = rowCanvases(el);
    // row 0: a green frame around output column 0, just outside the cell
    const s0 = strokes.get(rows[0]) ?? [];
    expect(s0).toHaveLength(1);
    expect(s0[0].colour).toBe("#17803a");
    const r = cellEl(el, 0, 0)!;
    expect(s0[0].x).toBe(parseFloat(r.style.left) - 2);
    expect(s0[0].w).toBe(40 + 4);
    const trueLabel = el.querySelector<HTMLElement>(".xw-label.xw-ag-true")!;
    expect(trueLabel.textContent).toBe("Sandal 0.93");
    expect(trueLabel.title).toBe("Sandal 0.93 · true label");
    expect(el.querySelectorAll(".xw-ag-true")).toHaveLength(1);
    // row 1: wrong, its true class is not among the outputs: a red frame on the image
    const s1 = strokes.get(rows[1]) ?? [];
    expect(s1.map((s) => s.colour)).toEqual(["#c4122f"]);
    const wrong = el.querySelector<HTMLElement>(".xw-ag-wrong")!;
    expect(wrong.textContent).toBe("✗ label: Bag");
    expect(wrong.title).toBe("label: Bag · prediction wrong: predicted Coat");
    expect(el.querySelectorAll(".xw-ag-wrong")).toHaveLength(1);
  });

  it("shows the error trait in place and a shape mismatch as an error; stays usable", async () => {
    const { el, model } = render(gridState({ error: "ValueError: boom <b>x</b>" }));
    const banner = el.querySelector<HTMLElement>(".xw-error")!;
    expect(banner.style.display).toBe("flex");
    expect(banner.textContent).toContain("boom <b>x</b>");
    expect(rowCanvases(el)).toHaveLength(2);
    model.set("error", "");
    expect(banner.style.display).toBe("none");
    model.set("values", f32([1, 2, 3], [1, 1, 3, 1]));
    await frame();
    expect(banner.style.display).toBe("flex");
    expect(banner.textContent).toMatch(/values: expected shape \(2, 2, 2, outputs\)/);
    expect(rowCanvases(el)).toHaveLength(0);
    model.set("values", gridState().values);
    await frame();
    expect(banner.style.display).toBe("none");
    expect(rowCanvases(el)).toHaveLength(2);
  });

  it("one-line labels for wide cells or without probabilities", () => {
    const { el } = render(gridState({ cell_size: 130 }));
    expect(el.querySelector(".xw-ag-label-2")).toBeNull();
    expect(cellEl(el, 0, 0)!.style.top).toBe(`${LABEL_HEIGHT}px`);
  });

  it("RGB images and inverted drawing", async () => {
    const rgb = f32([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1], [1, 2, 2, 3]);
    const state = gridState({
      images: rgb,
      values: f32([0, 0, 0, 0], [1, 2, 2, 1]),
      output_labels: [["a"]],
      output_probabilities: null,
      row_titles: [],
    });
    const { el, model } = render(state);
    const img = cellPixels(el, 0, "image")!;
    expect(Array.from(img.slice(0, 4))).toEqual([255, 0, 0, 255]);
    model.set("invert_image", true);
    await frame();
    const inv = cellPixels(el, 0, "image")!;
    expect(Array.from(inv.slice(0, 4))).toEqual([0, 255, 255, 255]);
    expect(el.textContent).toContain("a");
  });

  it("draws only the first screenful of a long grid at once (rows are drawn as they scroll in)", () => {
    const n = 300, hh = 4, w = 4, o = 10;
    const { el } = render(
      gridState({
        images: f32(Array.from({ length: n * hh * w }, (_, k) => k % 7), [n, hh, w, 1]),
        values: f32(Array.from({ length: n * hh * w * o }, (_, k) => Math.sin(k)), [n, hh, w, o]),
        output_labels: Array.from({ length: n }, () => Array.from({ length: o }, (_, j) => `c${j}`)),
        output_probabilities: null,
        row_titles: [],
      }),
    );
    // every row has its placeholder of the row's size; only the visible ones have a canvas
    const placeholders = el.querySelectorAll<HTMLElement>(".xw-ag-row");
    expect(placeholders).toHaveLength(n);
    const drawn = rowCanvases(el).length;
    expect(drawn).toBeGreaterThan(0);
    expect(drawn).toBeLessThan(30);
    expect(placeholders[n - 1].style.height).toBe(placeholders[0].style.height);
  });

  it("cleanup removes the view and its listeners", () => {
    const { el, cleanup, listeners } = render(gridState());
    (cleanup as () => void)();
    expect(el.children).toHaveLength(0);
    for (const set of listeners.values()) expect(set.size).toBe(0);
  });
});

describe("AttributionGrid paging", () => {
  it("hides the pager without paging and moves the page trait with its buttons", () => {
    const { el, model, saved } = render(gridState({ page: 0, page_size: 0, row_count: 0 }));
    const pager = el.querySelector<HTMLElement>(".xw-ag-pager")!;
    expect(pager.style.display).toBe("none");
    model.set("page_size", 2);
    model.set("row_count", 5);
    expect(pager.style.display).toBe("");
    const label = pager.querySelector(".xw-ag-page-label")!;
    expect(label.textContent).toBe("rows 1–2 of 5 · page 1 of 3");
    const [prev, next] = Array.from(pager.querySelectorAll<HTMLButtonElement>("button"));
    expect(prev.disabled).toBe(true);
    next.click();
    expect(model.get("page")).toBe(1);
    expect(saved.length).toBe(1);
    expect(label.textContent).toBe("rows 3–4 of 5 · page 2 of 3");
    next.click();
    expect(label.textContent).toBe("rows 5–5 of 5 · page 3 of 3");
    expect(next.disabled).toBe(true);
    next.click(); // past the last page: stays
    expect(model.get("page")).toBe(2);
    prev.click();
    expect(model.get("page")).toBe(1);
  });
});
