// The row-canvas mock of the AttributionGrid render tests (never imported by a widget entry):
// each row of the grid is one canvas; the mock records every cell drawn into it (the cell's
// pixels and where they went) and every frame stroked around a cell.

interface Blit {
  pixels: Uint8ClampedArray;
  x: number;
  y: number;
  w: number;
  h: number;
}
interface Stroke {
  colour: string;
  x: number;
  y: number;
  w: number;
  h: number;
}
const scratch = new WeakMap<object, Uint8ClampedArray>();
export const blits = new WeakMap<object, Blit[]>();
export const strokes = new WeakMap<object, Stroke[]>();

/** Replace HTMLCanvasElement.getContext with the recording mock; returns the restore function. */
export function installRowCanvasMock(): () => void {
  const original = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement) {
    const canvas = this;
    const ctx = {
      imageSmoothingEnabled: true,
      strokeStyle: "",
      lineWidth: 1,
      save: () => {},
      restore: () => {},
      createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
      putImageData: (img: { data: Uint8ClampedArray }) => scratch.set(canvas, img.data.slice()),
      drawImage: (src: HTMLCanvasElement, ...a: number[]) => {
        // drawImage(src, sx, sy, sw, sh, dx, dy, dw, dh): keep the source rectangle's pixels
        const [sx, sy, sw, sh, x, y, w, h] = a;
        const all = scratch.get(src)!;
        const part = new Uint8ClampedArray(sw * sh * 4);
        for (let r = 0; r < sh; r++) {
          const from = ((sy + r) * src.width + sx) * 4;
          part.set(all.subarray(from, from + sw * 4), r * sw * 4);
        }
        if (!blits.has(canvas)) blits.set(canvas, []);
        blits.get(canvas)!.push({ pixels: part, x, y, w, h });
      },
      strokeRect: (x: number, y: number, w: number, h: number) => {
        if (!strokes.has(canvas)) strokes.set(canvas, []);
        strokes.get(canvas)!.push({ colour: ctx.strokeStyle, x, y, w, h });
      },
      clearRect: () => {},
    };
    return ctx as unknown as CanvasRenderingContext2D;
  } as unknown as typeof HTMLCanvasElement.prototype.getContext;
  return () => {
    HTMLCanvasElement.prototype.getContext = original;
  };
}

/** The frame element of cell (row, col) ("image" or an output index). */
export const cellEl = (el: HTMLElement, row: number, col: number | string) =>
  el.querySelector<HTMLElement>(`.xw-ag-cell[data-row="${row}"][data-col="${col}"]`);

/** The pixels last drawn into cell (row, col) of its row canvas (device pixel ratio 1). */
export function cellPixels(el: HTMLElement, row: number, col: number | string): Uint8ClampedArray | undefined {
  const canvas = el.querySelector(`canvas.xw-ag-row-canvas[data-row="${row}"]`)!;
  const box = cellEl(el, row, col)!;
  const x = parseFloat(box.style.left);
  const y = parseFloat(box.style.top);
  const hits = (blits.get(canvas) ?? []).filter((b) => b.x === x && b.y === y);
  return hits.at(-1)?.pixels;
}

/** The row canvases drawn so far, in row order. */
export const rowCanvases = (el: HTMLElement) => Array.from(el.querySelectorAll<HTMLCanvasElement>("canvas.xw-ag-row-canvas"));
