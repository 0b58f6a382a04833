// Small form controls for view toolbars. Labels are set as text.
import { h } from "./dom";

export interface Control<T> {
  el: HTMLElement;
  set(value: T): void;
}

/** A row of toggle buttons; exactly one is pressed. */
export function segmented<T extends string>(
  label: string,
  options: { value: T; text: string; title?: string }[],
  value: T,
  onChange: (v: T) => void,
): Control<T> {
  const buttons = options.map((o) => {
    const b = h("button", {
      className: "xw-seg-button",
      text: o.text,
      title: o.title,
      attrs: { type: "button", "data-value": o.value },
    });
    b.addEventListener("click", () => onChange(o.value));
    return b;
  });
  const set = (v: T) =>
    buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(options[i].value === v)));
  set(value);
  const el = h("div", { className: "xw-control" }, [
    h("span", { className: "xw-control-label", text: label }),
    h("div", { className: "xw-seg", attrs: { role: "group" } }, buttons),
  ]);
  return { el, set };
}

/** A range slider with its current value shown beside it; onChange fires while dragging. */
export function slider(
  label: string,
  min: number,
  max: number,
  step: number,
  value: number,
  onChange: (v: number) => void,
  format: (v: number) => string = String,
  commitOnRelease = false,
): Control<number> {
  const input = h("input", {
    className: "xw-slider",
    attrs: { type: "range", min: String(min), max: String(max), step: String(step) },
  });
  const out = h("span", { className: "xw-control-value" });
  const set = (v: number) => {
    input.value = String(v);
    out.textContent = format(v);
  };
  set(value);
  input.addEventListener("input", () => {
    out.textContent = format(Number(input.value));
    if (!commitOnRelease) onChange(Number(input.value));
  });
  // commitOnRelease: the value shows while dragging and onChange fires once, on release
  if (commitOnRelease) input.addEventListener("change", () => onChange(Number(input.value)));
  const el = h("label", { className: "xw-control" }, [
    h("span", { className: "xw-control-label", text: label }),
    input,
    out,
  ]);
  return { el, set };
}

/** A checkbox with a text label. */
export function checkbox(label: string, value: boolean, onChange: (v: boolean) => void): Control<boolean> {
  const input = h("input", { attrs: { type: "checkbox" } });
  input.checked = value;
  input.addEventListener("change", () => onChange(input.checked));
  const el = h("label", { className: "xw-control" }, [input, h("span", { text: label })]);
  return { el, set: (v) => (input.checked = v) };
}
