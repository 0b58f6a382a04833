// Turn float arrays into RGBA pixels (images of any value range, attribution overlays) and
// draw them on a canvas, scaled up with crisp (nearest-neighbour) pixels.
import type { NumericArray } from "./arrays";
import { type ColorMap, NEGATIVE_RGB, POSITIVE_RGB, diverging, over } from "./colormap";
import { extent } from "./scale";

/** One image inside an (n, h, w, c) array: image i starts at i * h * w * c. */
export interface ImageRef {
  data: NumericArray;
  offset: number;
  h: number;
  w: number;
  c: number;
}

/** Normalised 0..1 levels of an image (min -> 0, max -> 1; constant -> 0.5). RGB keeps channels. */
function normaliser(img: ImageRef, invert: boolean): (v: number) => number {
  const n = img.h * img.w * img.c;
  const [lo, hi] = extent(img.data, img.offset, img.offset + n);
  const span = hi - lo;
  if (!(span > 0)) return () => 0.5;
  return invert ? (v) => (hi - v) / span : (v) => (v - lo) / span;
}

/**
 * RGBA bytes (h * w * 4) of an image, normalised by its own min/max. c = 1 is grey, c >= 3
 * uses the first three channels as RGB. `invert` draws -x (light strokes on dark become dark
 * on light, as the DeepExplainer example plots -x_test).
 */
export function imageRGBA(img: ImageRef, invert = false): Uint8ClampedArray {
  const { h, w, c, data, offset } = img;
  const norm = normaliser(img, invert);
  const out = new Uint8ClampedArray(h * w * 4);
  for (let p = 0; p < h * w; p++) {
    const base = offset + p * c;
    if (c >= 3) {
      out[p * 4] = norm(data[base]) * 255;
      out[p * 4 + 1] = norm(data[base + 1]) * 255;
      out[p * 4 + 2] = norm(data[base + 2]) * 255;
    } else {
      const g = norm(data[base]) * 255;
      out[p * 4] = g;
      out[p * 4 + 1] = g;
      out[p * 4 + 2] = g;
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}

/** Grey levels 0..1 (h * w) of an image: luminance for RGB, normalised like imageRGBA. */
export function greyLevels(img: ImageRef, invert = false): Float32Array {
  const { h, w, c, data, offset } = img;
  const norm = normaliser(img, invert);
  const out = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    const base = offset + p * c;
    out[p] =
      c >= 3
        ? 0.299 * norm(data[base]) + 0.587 * norm(data[base + 1]) + 0.114 * norm(data[base + 2])
        : norm(data[base]);
  }
  return out;
}

/**
 * Grey levels of an image for a faint underlay: light strokes on a dark background (MNIST) are
 * inverted so that the background stays white and the strokes show faintly dark.
 */
export function underlay(ref: ImageRef): Float32Array {
  const grey = greyLevels(ref);
  let sum = 0;
  for (let i = 0; i < grey.length; i++) sum += grey[i];
  return sum / Math.max(1, grey.length) < 0.5 ? greyLevels(ref, true) : grey;
}

/** Attribution values of one cell: value p is data[offset + p * stride], p = y * w + x. */
export interface ValuesRef {
  data: NumericArray;
  offset: number;
  stride: number;
}

/**
 * RGBA bytes of an attribution map over a faint grey copy of the image: the image is drawn in
 * grey at opacity `faint` on white, then `map(value / maxAbs)` is composited over it.
 */
export function overlayRGBA(
  values: ValuesRef,
  grey: Float32Array,
  maxAbs: number,
  faint = 0.18,
  map: ColorMap = diverging,
): Uint8ClampedArray {
  const n = grey.length;
  const out = new Uint8ClampedArray(n * 4);
  const inv = maxAbs > 0 ? 1 / maxAbs : 0;
  const { data, offset, stride } = values;
  const base = 255 * (1 - faint);
  if (map === diverging) {
    // the same as the general loop below, without an array per pixel (large grids)
    const [pr, pg, pb] = POSITIVE_RGB;
    const [nr, ng, nb] = NEGATIVE_RGB;
    for (let p = 0; p < n; p++) {
      const g = base + 255 * faint * grey[p];
      let t = data[offset + p * stride] * inv;
      let r = g;
      let gg = g;
      let b = g;
      if (t - t === 0) {
        // finite (NaN and infinities stay transparent); alpha = round(|t| * 255) / 255 as diverging()
        if (t > 1) t = 1;
        else if (t < -1) t = -1;
        const a = Math.round(Math.abs(t) * 255) / 255;
        const pos = t >= 0;
        r = (pos ? pr : nr) * a + g * (1 - a);
        gg = (pos ? pg : ng) * a + g * (1 - a);
        b = (pos ? pb : nb) * a + g * (1 - a);
      }
      out[p * 4] = Math.round(r);
      out[p * 4 + 1] = Math.round(gg);
      out[p * 4 + 2] = Math.round(b);
      out[p * 4 + 3] = 255;
    }
    return out;
  }
  for (let p = 0; p < n; p++) {
    const g = base + 255 * faint * grey[p];
    const col = over(map(data[offset + p * stride] * inv), [g, g, g]);
    out[p * 4] = col[0];
    out[p * 4 + 1] = col[1];
    out[p * 4 + 2] = col[2];
    out[p * 4 + 3] = 255;
  }
  return out;
}

/**
 * Draw RGBA pixels (w x h) on `canvas`, scaled to cssWidth x cssHeight CSS pixels with crisp
 * pixels and the device pixel ratio applied. Returns false where no 2D context exists.
 */
export function drawRGBA(
  canvas: HTMLCanvasElement,
  rgba: Uint8ClampedArray,
  w: number,
  h: number,
  cssWidth: number,
  cssHeight: number,
): boolean {
  const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
  canvas.width = Math.max(1, Math.round(cssWidth * dpr));
  canvas.height = Math.max(1, Math.round(cssHeight * dpr));
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext("2d");
  if (!ctx) return false;
  const src = document.createElement("canvas");
  src.width = w;
  src.height = h;
  const sctx = src.getContext("2d");
  if (!sctx) return false;
  const imageData = sctx.createImageData(w, h);
  imageData.data.set(rgba);
  sctx.putImageData(imageData, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(src, 0, 0, canvas.width, canvas.height);
  return true;
}

/** Pixel (x, y) of the w x h image under a mouse event on a canvas drawn by drawRGBA. */
export function pixelAt(
  canvas: HTMLElement,
  clientX: number,
  clientY: number,
  w: number,
  h: number,
): [number, number] | null {
  const r = canvas.getBoundingClientRect();
  if (!(r.width > 0 && r.height > 0)) return null;
  const x = Math.floor(((clientX - r.left) / r.width) * w);
  const y = Math.floor(((clientY - r.top) / r.height) * h);
  if (x < 0 || y < 0 || x >= w || y >= h) return null;
  return [x, y];
}

/** A rectangle in CSS pixels. */
export interface CssRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Paints w x h RGBA cells into rectangles of a larger canvas (a whole grid row on one canvas):
 * the cells are stacked in one reused scratch canvas (one putImageData per row), then each is
 * scaled into its rectangle with crisp (nearest-neighbour) pixels.
 */
export class CellPainter {
  private scratch: HTMLCanvasElement | null = null;
  private sctx: CanvasRenderingContext2D | null = null;
  private imageData: ImageData | null = null;

  /** Size `canvas` to cssWidth x cssHeight CSS pixels (device pixel ratio applied); its 2D context. */
  static prepare(canvas: HTMLCanvasElement, cssWidth: number, cssHeight: number): CanvasRenderingContext2D | null {
    const dpr = devicePixelRatio();
    canvas.width = Math.max(1, Math.round(cssWidth * dpr));
    canvas.height = Math.max(1, Math.round(cssHeight * dpr));
    canvas.style.width = `${cssWidth}px`;
    canvas.style.height = `${cssHeight}px`;
    const ctx = canvas.getContext("2d");
    if (ctx) ctx.imageSmoothingEnabled = false;
    return ctx;
  }

  /** Draw cells[k] (w x h RGBA each) into rects[k] (CSS pixels) of `ctx`'s canvas. */
  paint(ctx: CanvasRenderingContext2D, cells: Uint8ClampedArray[], w: number, h: number, rects: CssRect[]): void {
    const count = cells.length;
    if (count === 0) return;
    if (!this.scratch || this.scratch.width !== w || this.scratch.height !== h * count) {
      this.scratch = document.createElement("canvas");
      this.scratch.width = w;
      this.scratch.height = h * count;
      this.sctx = this.scratch.getContext("2d");
      this.imageData = this.sctx ? this.sctx.createImageData(w, h * count) : null;
    }
    if (!this.sctx || !this.imageData) return;
    for (let k = 0; k < count; k++) this.imageData.data.set(cells[k], k * w * h * 4);
    this.sctx.putImageData(this.imageData, 0, 0);
    const dpr = devicePixelRatio();
    for (let k = 0; k < count; k++) {
      const r = rects[k];
      const X = Math.round(r.x * dpr);
      const Y = Math.round(r.y * dpr);
      const W = Math.round((r.x + r.w) * dpr) - X;
      const H = Math.round((r.y + r.h) * dpr) - Y;
      ctx.drawImage(this.scratch, 0, k * h, w, h, X, Y, W, H);
    }
  }
}

function devicePixelRatio(): number {
  return (typeof window !== "undefined" && window.devicePixelRatio) || 1;
}
