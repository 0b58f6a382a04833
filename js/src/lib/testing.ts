// Helpers for the vitest render tests of the views (never imported by a widget entry):
// a minimal AnyModel, float32 buffers as Python sends them, and a canvas 2D mock that
// remembers the pixels drawn on each canvas.
import type { AnyModel } from "@anywidget/types";

type Listener = () => void;

/** A minimal AnyModel: get/set/on/off/save_changes, firing change:<key> on set. */
export function mockModel(state: Record<string, unknown>) {
  const listeners = new Map<string, Set<Listener>>();
  const saved: string[] = [];
  const model = {
    get: (k: string) => state[k],
    set: (k: string, v: unknown) => {
      state[k] = v;
      listeners.get(`change:${k}`)?.forEach((f) => f());
    },
    on: (name: string, f: Listener) => {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name)!.add(f);
    },
    off: (name: string, f: Listener) => listeners.get(name)?.delete(f),
    save_changes: () => saved.push("save"),
    send: () => {},
    widget_manager: { get_model: async () => model },
  };
  return { model: model as unknown as AnyModel, saved, listeners, state };
}

/** A float32 array as Python sends it: a DataView at a non-zero offset into a buffer. */
export function f32(values: number[], shape: number[]) {
  const buf = new ArrayBuffer(8 + values.length * 4);
  new Float32Array(buf, 8, values.length).set(values);
  return { view: new DataView(buf, 8, values.length * 4), dtype: "float32", shape };
}

/** Pixels last put on / drawn to each canvas by the mock below. */
export const pixels = new WeakMap<object, Uint8ClampedArray>();

/** Replace HTMLCanvasElement.getContext with a recording mock; returns the restore function. */
export function installCanvasMock(): () => void {
  const original = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement) {
    const canvas = this;
    return {
      imageSmoothingEnabled: true,
      createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
      putImageData: (img: { data: Uint8ClampedArray }) => pixels.set(canvas, img.data.slice()),
      drawImage: (src: object) => pixels.set(canvas, pixels.get(src)!),
      clearRect: () => {},
    } as unknown as CanvasRenderingContext2D;
  } as unknown as typeof HTMLCanvasElement.prototype.getContext;
  return () => {
    HTMLCanvasElement.prototype.getContext = original;
  };
}

/** Pretend `el` is laid out at (0, 0) with the given size (happy-dom has no layout). */
export function fakeBox(el: Element, width: number, height: number): void {
  el.getBoundingClientRect = () =>
    ({ left: 0, top: 0, width, height, right: width, bottom: height, x: 0, y: 0, toJSON: () => ({}) }) as DOMRect;
}

/** Render `widget` on a mock model of `state` in a fresh element attached to the document. */
export function mountWidget(
  widget: { render: (props: { model: never; el: HTMLElement }) => () => void },
  state: Record<string, unknown>,
) {
  const el = document.createElement("div");
  document.body.appendChild(el);
  const m = mockModel(state);
  const cleanup = widget.render({ model: m.model as never, el });
  return { ...m, el, cleanup };
}
