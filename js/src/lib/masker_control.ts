// Masker strings ("blur(28,28)", "inpaint_telea", "inpaint_ns", "constant(0.5)") and a control
// that edits one: toggle buttons for the kind, a kernel slider for blur (committed on
// release), a value field for constant.
import { segmented, slider } from "./controls";
import { h } from "./dom";
import { numberField } from "./inputs";

export type MaskerKind = "blur" | "inpaint_telea" | "inpaint_ns" | "constant";

/** Kind, blur kernel and constant value of a masker string ("blur(28,28)", "constant(0.5)"). */
export function parseMasker(spec: string): { kind: MaskerKind | null; size: number | null; value: string | null } {
  const s = (spec ?? "").toLowerCase().replace(/\s+/g, "");
  const blur = /^blur\((\d+),(\d+)\)$/.exec(s);
  if (blur) return { kind: "blur", size: Math.max(Number(blur[1]), Number(blur[2])), value: null };
  if (s === "inpaint_telea" || s === "inpaint_ns") return { kind: s, size: null, value: null };
  const constant = /^constant\(([^)]*)\)$/.exec(s);
  if (constant) return { kind: "constant", size: null, value: constant[1] };
  return { kind: null, size: null, value: null };
}

/** Toggle buttons for the masker kind, plus the blur kernel slider or the constant's value. */
export function maskerControl(label: string, maxSize: number, onChange: (spec: string) => void) {
  let size = maxSize;
  let value = "0";
  const kinds = segmented<MaskerKind | "">(
    label,
    [
      { value: "blur", text: "blur", title: "hidden pixels take the box-blurred image (cv2.blur)" },
      { value: "inpaint_telea", text: "inpaint_telea", title: "OpenCV inpainting, Telea's method" },
      { value: "inpaint_ns", text: "inpaint_ns", title: "OpenCV inpainting, Navier-Stokes" },
      { value: "constant", text: "constant", title: "hidden pixels set to one value" },
    ],
    "",
    (kind) => {
      if (kind === "blur") onChange(`blur(${size},${size})`);
      else if (kind === "constant") onChange(`constant(${value})`);
      else if (kind) onChange(kind);
    },
  );
  const kernel = slider("kernel", 1, Math.max(1, maxSize), 1, size, (v) => onChange(`blur(${v},${v})`), (v) => `${v}×${v}`, true);
  const fill = numberField("value", 0, (v) => onChange(`constant(${v})`), { step: 0.1, width: "4.5em" });
  const el = h("div", { className: "xw-controls" }, [kinds.el, kernel.el, fill.el]);
  const set = (spec: string) => {
    const p = parseMasker(spec);
    if (p.size != null) size = p.size;
    if (p.value != null) value = p.value;
    kinds.set(p.kind ?? "");
    kernel.set(size);
    if (p.value != null && Number.isFinite(Number(p.value))) fill.set(Number(p.value));
    kernel.el.style.display = p.kind === "blur" ? "" : "none";
    fill.el.style.display = p.kind === "constant" ? "" : "none";
  };
  return { el, set };
}

