// Attribution cells, written once for every view: an image cell, an attribution map drawn with
// the diverging colour map (over a faint grey copy of its image, blended over the image, or the
// image masked to its top-attributed pixels), the pixel tooltip over a cell, and the symmetric
// colour bar beside a column of cells. The sizes a view needs to line things up (label band,
// gap between rows of cells) are CSS custom properties on .xw-root, read back with cellSizes():
// the CSS is the one place they are set.
import type { NumericArray } from "./arrays";
import { createColorbar } from "./colorbar";
import { NEGATIVE_RGB, POSITIVE_RGB, diverging } from "./colormap";
import { type ImageRef, type ValuesRef, drawRGBA, imageRGBA, overlayRGBA, pixelAt } from "./image";
import { formatNumber } from "./scale";
import type { Tooltip, TooltipRow } from "./tooltip";

/** The size properties and their values, declared once (BASE_CSS puts them on .xw-root). */
export const CELL_SIZE_PROPERTIES = {
  /** height of the one-line label band above a cell (.xw-label) */
  labelHeight: ["--xw-label-height", 16],
  /** gap between two rows of cells in a view's grid (row-gap) */
  rowGap: ["--xw-row-gap", 8],
} as const;

export type CellSizes = { [K in keyof typeof CELL_SIZE_PROPERTIES]: number };

/** `.xw-root { --xw-label-height: 16px; ... }`: the CSS that sets the sizes. */
export const CELL_SIZE_CSS = `.xw-root { ${Object.values(CELL_SIZE_PROPERTIES)
  .map(([name, px]) => `${name}: ${px}px;`)
  .join(" ")} }`;

/**
 * The cell sizes in effect at `el` (CSS pixels), read from its computed style: a theme or a
 * user stylesheet that overrides a property moves the CSS and the view's arithmetic together.
 * Where no style is computed (an element not in a document), the declared values.
 */
export function cellSizes(el: Element | null): CellSizes {
  const out = {} as Record<string, number>;
  let style: CSSStyleDeclaration | null = null;
  try {
    style = el && el.isConnected && typeof getComputedStyle === "function" ? getComputedStyle(el) : null;
  } catch {
    style = null;
  }
  for (const [key, [name, fallback]] of Object.entries(CELL_SIZE_PROPERTIES)) {
    const v = parseFloat(style?.getPropertyValue(name) ?? "");
    out[key] = Number.isFinite(v) ? v : fallback;
  }
  return out as CellSizes;
}

/** Length of a colour bar beside `rows` stacked cells of height cellH, each with a label band above. */
export function stackLength(rows: number, cellH: number, sizes: CellSizes, extraLabel = 0): number {
  return rows * cellH + (rows - 1) * (sizes.rowGap + sizes.labelHeight + extraLabel);
}

/** Height of a cell `width` CSS pixels wide showing an h x w image (at least 1). */
export function cellHeight(width: number, h: number, w: number): number {
  return Math.max(1, Math.round((width * h) / Math.max(1, w)));
}

// ---------------------------------------------------------------------------- drawing
/** How an attribution cell shows its map. */
export type OverlayMode = "heatmap" | "blend" | "mask";

/** Draw an image cell (normalised by its own range; `invert` draws -x). */
export function drawImageCell(canvas: HTMLCanvasElement, img: ImageRef, cssW: number, cssH: number, invert = false): boolean {
  return drawRGBA(canvas, imageRGBA(img, invert), img.w, img.h, cssW, cssH);
}

/**
 * Draw an attribution map: value / maxAbs through the diverging map (red positive, blue
 * negative, alpha growing with |value|) over the image's grey levels shown at opacity `faint`.
 */
export function drawAttributionCell(
  canvas: HTMLCanvasElement,
  values: ValuesRef,
  grey: Float32Array,
  maxAbs: number,
  w: number,
  h: number,
  cssW: number,
  cssH: number,
  faint = 0.18,
): boolean {
  return drawRGBA(canvas, overlayRGBA(values, grey, maxAbs, faint), w, h, cssW, cssH);
}

/**
 * RGBA of the diverging map composited over the image itself (not a faint copy), the map's
 * alpha scaled by `strength` (0..1): where the map is 0 the image shows unchanged.
 */
export function blendRGBA(values: ValuesRef, image: Uint8ClampedArray, maxAbs: number, strength = 0.6): Uint8ClampedArray {
  const n = image.length / 4;
  const out = new Uint8ClampedArray(n * 4);
  const inv = maxAbs > 0 ? 1 / maxAbs : 0;
  for (let p = 0; p < n; p++) {
    const c = diverging(values.data[values.offset + p * values.stride] * inv);
    const a = (c[3] / 255) * strength;
    for (let k = 0; k < 3; k++) out[p * 4 + k] = Math.round(c[k] * a + image[p * 4 + k] * (1 - a));
    out[p * 4 + 3] = 255;
  }
  return out;
}

/**
 * RGBA of the image keeping only the pixels where `keep` is non-zero (keep[keepOffset + p]);
 * the others are drawn as a light grey veil over the image (at `veil` opacity, default 0.85).
 */
export function maskedRGBA(image: Uint8ClampedArray, keep: NumericArray, keepOffset: number, veil = 0.85): Uint8ClampedArray {
  const n = image.length / 4;
  const out = new Uint8ClampedArray(n * 4);
  for (let p = 0; p < n; p++) {
    const kept = keep[keepOffset + p] !== 0;
    for (let k = 0; k < 3; k++) {
      const v = image[p * 4 + k];
      out[p * 4 + k] = kept ? v : Math.round(235 * veil + v * (1 - veil));
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}

/** The colours of the map's ends, for legends: [positive, negative] as CSS rgb(). */
export const ATTRIBUTION_COLOURS = [POSITIVE_RGB, NEGATIVE_RGB].map((c) => `rgb(${c.join(", ")})`);

// ---------------------------------------------------------------------------- tooltip
/** "pixel (x, y)" and "pixel value" rows of an image at (x, y) (up to four channels). */
export function pixelRows(img: ImageRef, x: number, y: number, label = "pixel value"): TooltipRow[] {
  const k = img.offset + (y * img.w + x) * img.c;
  const parts: string[] = [];
  for (let ch = 0; ch < Math.min(img.c, 4); ch++) parts.push(formatNumber(img.data[k + ch]));
  return [
    ["pixel (x, y)", `(${x}, ${y})`],
    [label, parts.join(", ")],
  ];
}

/** What a tooltip shows for a pixel: its rows and title; null hides it. */
export type PixelDescriber = (x: number, y: number) => { rows: TooltipRow[]; title: string } | null;

/** Show `tooltip` over `canvas` (a w x h image drawn at any size) with describe(x, y) of the pixel under the mouse. */
export function bindPixelTooltip(canvas: HTMLElement, tooltip: Tooltip, w: number, h: number, describe: PixelDescriber): void {
  canvas.addEventListener("mousemove", (ev) => {
    const p = pixelAt(canvas, ev.clientX, ev.clientY, w, h);
    const tip = p ? describe(p[0], p[1]) : null;
    if (!tip) return tooltip.hide();
    tooltip.show(ev.clientX, ev.clientY, tip.rows, tip.title);
  });
  canvas.addEventListener("mouseleave", () => tooltip.hide());
}

// ---------------------------------------------------------------------------- colour bar
/**
 * The colour bar of attributions in [-maxAbs, maxAbs] (the diverging map), `length` CSS pixels
 * long, starting `top` pixels down (past a label band), with an optional class and caption.
 */
export function attributionColorbar(
  maxAbs: number,
  length: number,
  caption = "",
  opts: { top?: number; className?: string } = {},
): HTMLElement {
  const m = maxAbs > 0 ? maxAbs : 1;
  const bar = createColorbar({ lo: -m, hi: m, colorOf: (v) => diverging(v / m), length, caption });
  if (opts.className) bar.classList.add(opts.className);
  if (opts.top) bar.style.paddingTop = `${opts.top}px`;
  return bar;
}
