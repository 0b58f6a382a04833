// Inputs that commit a value once (on Enter / blur; the commit-on-release slider is
// controls.slider(..., commitOnRelease = true)), for settings whose change
// starts a computation in the kernel: dragging a slider must not start twenty runs.
import type { Control } from "./controls";
import { h } from "./dom";

/**
 * A number field committed on Enter or when it loses focus (only when the text parses as a
 * finite number; otherwise the last value comes back). `integer` rounds the value.
 */
export function numberField(
  label: string,
  value: number,
  onCommit: (v: number) => void,
  opts: { min?: number; max?: number; step?: number; integer?: boolean; width?: string } = {},
): Control<number> {
  const attrs: Record<string, string> = { type: "number" };
  if (opts.min !== undefined) attrs.min = String(opts.min);
  if (opts.max !== undefined) attrs.max = String(opts.max);
  if (opts.step !== undefined) attrs.step = String(opts.step);
  const input = h("input", { className: "xw-number", attrs });
  input.style.width = opts.width ?? "5em";
  let current = value;
  const set = (v: number) => {
    current = v;
    input.value = String(v);
  };
  set(value);
  const commit = () => {
    let v = Number(input.value);
    if (input.value.trim() === "" || !Number.isFinite(v)) return set(current);
    if (opts.integer) v = Math.round(v);
    if (v === current) return set(current);
    current = v;
    onCommit(v);
  };
  input.addEventListener("change", commit);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") commit();
  });
  const el = h("label", { className: "xw-control" }, [
    h("span", { className: "xw-control-label", text: label }),
    input,
  ]);
  return { el, set };
}
