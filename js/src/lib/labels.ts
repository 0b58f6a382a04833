// Label rows above cells: a name and an optional probability, set as text (never HTML).
import { h } from "./dom";

/** "0.93" for probabilities; "<0.01" below one hundredth. */
export function formatProbability(p: number): string {
  if (!Number.isFinite(p)) return "";
  if (p > 0 && p < 0.01) return "<0.01";
  return p.toFixed(2);
}

/** The full label string: "Sandal 0.93" (or just "Sandal" without a probability). */
export function labelText(name: string, prob?: number | null): string {
  return prob == null || !Number.isFinite(prob) ? name : `${name} ${formatProbability(prob)}`;
}

/**
 * A label element with the name and the probability in separate spans; the whole text is
 * also the element's title (shown in full when the cell is too narrow).
 */
export function cellLabel(name: string, prob?: number | null, className = "xw-label"): HTMLElement {
  const hasProb = prob != null && Number.isFinite(prob);
  return h("div", { className, title: labelText(name, prob) }, [
    h("span", { className: "xw-label-name", text: name }),
    hasProb ? h("span", { className: "xw-label-prob", text: ` ${formatProbability(prob)}` }) : null,
  ]);
}
