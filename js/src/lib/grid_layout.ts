// Layout of an image grid row drawn on one canvas: the cell size (chosen from the image size
// and shrunk to the available width), how many cells fit on a line (a row wraps onto more lines
// when they do not), and where each cell and its label sit inside the row.

/** Height of a one-line label band above each cell, in CSS pixels (keep equal to .xw-label height). */
export const LABEL_HEIGHT = 16;
/** Height of a two-line label band (name, then probability) used for narrow cells. */
export const LABEL_HEIGHT_2 = 28;
/** Horizontal gap between cells (room for the true-label frame). */
export const CELL_GAP = 6;
/** Vertical gap between the lines of a wrapped row. */
export const LINE_GAP = 6;
/** Cells never shrink below this when fitting to the width (they wrap instead). */
export const MIN_CELL = 48;
/** Automatic cells never grow past this. */
export const MAX_AUTO_CELL = 224;
/** Preferred width of a cell showing a small image. */
export const TARGET_CELL = 84;

/**
 * Preferred cell width for an image `imageWidth` pixels wide: small images at a whole
 * multiple of their size near 84 px (crisp pixels: 28 -> 84, 12 -> 84, 64 -> 128), larger
 * images at their own size up to 224 px (224 -> 224, 500 -> 224).
 */
export function preferredCellSize(imageWidth: number): number {
  const w = Math.max(1, Math.round(imageWidth));
  if (w >= TARGET_CELL) return Math.min(w, MAX_AUTO_CELL);
  return Math.min(w * Math.ceil(TARGET_CELL / w), MAX_AUTO_CELL);
}

export interface GridLayoutInput {
  /** cells per row (image column + outputs) */
  columns: number;
  imageWidth: number;
  imageHeight: number;
  /** the user's cell width; 0 or less: automatic (preferredCellSize, shrunk to fit) */
  cellSize: number;
  /** width the row (plus `reserved`) may take, in CSS pixels; 0 or less / not finite: no limit */
  available: number;
  /** width taken beside the rows (the colour bar) */
  reserved?: number;
  /** labels take two lines (name, probability) when cells are narrower than this (default 0: never) */
  twoLinesBelow?: number;
}

export interface GridLayout {
  cell: number;
  cellH: number;
  columns: number;
  /** cells per line (columns when the row fits on one line) */
  perLine: number;
  lines: number;
  /** height of the label band above each line of cells */
  labelH: number;
  /** size of one row's block (all its lines) in CSS pixels */
  width: number;
  height: number;
}

/** Cell size and wrapping of a row for the available width. */
export function gridLayout(input: GridLayoutInput): GridLayout {
  const columns = Math.max(1, input.columns);
  const reserved = Math.max(0, input.reserved ?? 0);
  const limit = input.available > 0 && Number.isFinite(input.available) ? input.available - reserved : Infinity;
  const fitCell = Math.floor((limit - (columns - 1) * CELL_GAP) / columns);
  let cell: number;
  if (input.cellSize > 0) cell = Math.max(8, Math.round(input.cellSize));
  else cell = Math.max(Math.min(preferredCellSize(input.imageWidth), fitCell), MIN_CELL);
  const perLine = Math.max(1, Math.min(columns, Math.floor((limit + CELL_GAP) / (cell + CELL_GAP))));
  const lines = Math.ceil(columns / perLine);
  const cellH = Math.max(1, Math.round((cell * input.imageHeight) / Math.max(1, input.imageWidth)));
  const labelH = cell < (input.twoLinesBelow ?? 0) ? LABEL_HEIGHT_2 : LABEL_HEIGHT;
  return {
    cell,
    cellH,
    columns,
    perLine,
    lines,
    labelH,
    width: perLine * cell + (perLine - 1) * CELL_GAP,
    height: lines * (labelH + cellH) + (lines - 1) * LINE_GAP,
  };
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where cell `col` (0 = image) is drawn inside its row block (below its label band). */
export function cellRect(layout: GridLayout, col: number): Rect {
  const line = Math.floor(col / layout.perLine);
  const k = col % layout.perLine;
  return {
    x: k * (layout.cell + CELL_GAP),
    y: line * (layout.labelH + layout.cellH + LINE_GAP) + layout.labelH,
    w: layout.cell,
    h: layout.cellH,
  };
}

/** The cell under the point (x, y) of a row block, or -1 (in a gap or a label band). */
export function cellAt(layout: GridLayout, x: number, y: number): number {
  const k = Math.floor(x / (layout.cell + CELL_GAP));
  const line = Math.floor(y / (layout.labelH + layout.cellH + LINE_GAP));
  if (k < 0 || k >= layout.perLine || line < 0 || line >= layout.lines) return -1;
  const col = line * layout.perLine + k;
  if (col >= layout.columns) return -1;
  const r = cellRect(layout, col);
  return x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h ? col : -1;
}
