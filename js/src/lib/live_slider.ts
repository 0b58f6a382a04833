// A range slider for settings that start a computation in the kernel: while it is dragged the
// value is committed at most every `throttleMs` (the kernel cancels the superseded run), and
// once more on release, so the last position always wins. While the user holds the slider (a
// pointer down on it, or a commit still waiting for the throttle) `set` does not move it: a
// value coming back from the kernel then is an older one, and moving the thumb under the user's
// pointer would make it jump back and lose the released value. Optional log scale. Text only.
import type { Control } from "./controls";
import { h } from "./dom";

export interface LiveSliderOptions {
  min: number;
  max: number;
  /** step of the value (linear) or of log10(value) (log scale) */
  step: number;
  /** slider position is log10(value) (min > 0) */
  log?: boolean;
  /** commit at most this often while dragging (ms); 0 commits only on release */
  throttleMs?: number;
  format?: (v: number) => string;
  title?: string;
}

export interface LiveSlider extends Control<number> {
  input: HTMLInputElement;
  /** whether the user holds the slider now (set() is ignored then) */
  held(): boolean;
  setDisabled(disabled: boolean, why?: string): void;
}

/** Round a value to 3 significant digits (log sliders give 3.1622776601683795). */
export function roundValue(v: number): number {
  return Number(v.toPrecision(3));
}

export function liveSlider(label: string, value: number, onCommit: (v: number) => void, opts: LiveSliderOptions): LiveSlider {
  const log = Boolean(opts.log) && opts.min > 0;
  const toPos = (v: number) => (log ? Math.log10(Math.max(v, opts.min)) : v);
  const toValue = (p: number) => (log ? roundValue(Math.pow(10, p)) : roundValue(p));
  const step = log ? opts.step || 0.01 : opts.step;
  const format = opts.format ?? ((v: number) => String(v));
  const input = h("input", {
    className: "xw-slider",
    attrs: {
      type: "range",
      min: String(toPos(opts.min)),
      max: String(toPos(opts.max)),
      step: step > 0 ? String(step) : "any",
    },
  });
  const out = h("span", { className: "xw-control-value" });
  let committed = value;
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let pressed = false;
  const held = () => pressed || timer !== null;
  const commit = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    last = Date.now();
    const v = toValue(Number(input.value));
    if (v === committed) return;
    committed = v;
    onCommit(v);
  };
  const set = (v: number) => {
    if (held()) return; // the user's position wins; the release commits it
    committed = v;
    input.value = String(toPos(v));
    out.textContent = format(v);
  };
  set(value);
  const throttle = opts.throttleMs ?? 200;
  input.addEventListener("input", () => {
    out.textContent = format(toValue(Number(input.value)));
    if (throttle <= 0) return;
    const wait = throttle - (Date.now() - last);
    if (wait <= 0) commit();
    else if (timer === null) timer = setTimeout(commit, wait);
  });
  // a drag: pressed from pointerdown until the pointer is released anywhere (then commit, in
  // case the browser fires no change event because the value came back to where it started),
  // or until the change event of the release (a pointerup outside the page may never come)
  const release = () => {
    if (!pressed) return;
    pressed = false;
    input.ownerDocument.removeEventListener("pointerup", release, true);
    input.ownerDocument.removeEventListener("pointercancel", release, true);
    commit();
  };
  input.addEventListener("change", () => (pressed ? release() : commit()));
  input.addEventListener("pointerdown", () => {
    pressed = true;
    input.ownerDocument.addEventListener("pointerup", release, true);
    input.ownerDocument.addEventListener("pointercancel", release, true);
  });
  const el = h("label", { className: "xw-control", title: opts.title }, [
    h("span", { className: "xw-control-label", text: label }),
    input,
    out,
  ]);
  return {
    el,
    input,
    set,
    held,
    setDisabled(disabled, why) {
      input.disabled = disabled;
      el.classList.toggle("xw-control-disabled", disabled);
      el.title = disabled && why ? why : (opts.title ?? "");
    },
  };
}
