// The AttributionGrid's layout arithmetic (lib/grid_layout.ts): the cell size from the image
// size, shrinking and wrapping to the width, points to cells.
import { describe, expect, it } from "vitest";
import { CELL_GAP, LABEL_HEIGHT, LABEL_HEIGHT_2, MIN_CELL, cellAt, cellRect, gridLayout, preferredCellSize } from "./grid_layout";

describe("grid layout", () => {
  it("picks the cell size from the image size", () => {
    expect(preferredCellSize(28)).toBe(84);
    expect(preferredCellSize(12)).toBe(84);
    expect(preferredCellSize(64)).toBe(128);
    expect(preferredCellSize(224)).toBe(224);
    expect(preferredCellSize(500)).toBe(224);
  });

  it("shrinks automatic cells to the width, then wraps; a user's size only wraps", () => {
    const base = { imageWidth: 224, imageHeight: 224, reserved: 84 };
    // 3 columns of 224 fit in 1000 px
    expect(gridLayout({ ...base, columns: 3, cellSize: 0, available: 1000 }).cell).toBe(224);
    // 11 columns in 900 px: cells shrink to fit on one line, colour bar included
    const fit = gridLayout({ ...base, columns: 11, cellSize: 0, available: 900 });
    expect(fit.perLine).toBe(11);
    expect(fit.width + 84).toBeLessThanOrEqual(900);
    // 11 columns in 500 px: cells stop at MIN_CELL and the row wraps
    const wrap = gridLayout({ ...base, columns: 11, cellSize: 0, available: 500 });
    expect(wrap.cell).toBe(MIN_CELL);
    expect(wrap.perLine * wrap.lines).toBeGreaterThanOrEqual(11);
    expect(wrap.lines).toBeGreaterThan(1);
    expect(wrap.width + 84).toBeLessThanOrEqual(500);
    // a user's cell size is kept; columns wrap to the width
    const user = gridLayout({ ...base, columns: 11, cellSize: 120, available: 900 });
    expect(user.cell).toBe(120);
    expect(user.width + 84).toBeLessThanOrEqual(900);
    expect(user.lines).toBe(Math.ceil(11 / user.perLine));
    // unknown width: no limit
    expect(gridLayout({ ...base, columns: 11, cellSize: 0, available: 0 }).perLine).toBe(11);
    // narrow cells: two-line labels, taller rows
    const narrow = gridLayout({ ...base, columns: 11, cellSize: 60, available: 0, twoLinesBelow: 120 });
    expect(narrow.labelH).toBe(LABEL_HEIGHT_2);
    expect(narrow.height).toBe(LABEL_HEIGHT_2 + 60);
    expect(gridLayout({ ...base, columns: 3, cellSize: 130, available: 0, twoLinesBelow: 120 }).labelH).toBe(LABEL_HEIGHT);
  });

  it("maps points to cells across wrapped lines", () => {
    const l = gridLayout({ columns: 5, imageWidth: 10, imageHeight: 10, cellSize: 50, available: 170 });
    expect(l.perLine).toBe(3);
    const r = cellRect(l, 4); // line 1, position 1
    expect(r.x).toBe(50 + CELL_GAP);
    expect(cellAt(l, r.x + 1, r.y + 1)).toBe(4);
    expect(cellAt(l, r.x + 1, r.y - 2)).toBe(-1); // in the label band
    expect(cellAt(l, 2 * (50 + CELL_GAP) + 1, r.y + 1)).toBe(-1); // no 6th cell
  });
});
