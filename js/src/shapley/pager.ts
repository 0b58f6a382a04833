// The pager of the ShapleyExplorer: the previous / next page of the image pool the picker
// offers, and an "image #" entry that adds any pool image by its index. Text only.
import type { AnyModel } from "@anywidget/types";
import { h } from "../lib/dom";
import { saver } from "../lib/model";

/** The traits the pager reads and writes (a part of the explorer's model). */
export interface PagerModel {
  page: number;
  pool_size: number;
  has_next_page: boolean;
  indices: number[];
}

export const PAGER_CSS = `
.xw-se-pager { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin: 0 0 8px; font-size: 11px; }
.xw-se-pager button { border: 1px solid rgba(127,127,127,.45); border-radius: 4px; background: transparent; color: inherit;
  font: inherit; padding: 0 8px; cursor: pointer; }
.xw-se-pager button:disabled { opacity: .45; cursor: default; }
.xw-se-page { font-variant-numeric: tabular-nums; min-width: 4.5em; text-align: center; }
.xw-se-pool { color: var(--jp-ui-font-color2, #59636e); }
.xw-se-goto { font: inherit; font-size: 11px; width: 5.5em; padding: 1px 3px; }
.xw-se-goto[aria-invalid="true"] { outline: 1px solid #b42318; }
`;

/**
 * Paging through the pool (the picker offers a page of correct and wrong predictions at a
 * time) and an "image #" entry that adds any pool image by its index to the explained ones.
 */
export function buildPager(model: AnyModel<PagerModel>): [HTMLElement, () => void] {
  const save = saver(model);
  const button = (text: string, title: string, action: string) =>
    h("button", { text, title, attrs: { type: "button", "data-action": action } });
  const prev = button("‹ prev", "the previous images of the pool", "prev-page");
  const next = button("next ›", "the next images of the pool", "next-page");
  const page = h("span", { className: "xw-se-page", attrs: { "aria-live": "polite" } });
  const pool = h("span", { className: "xw-se-pool" });
  const goto = h("input", {
    className: "xw-se-goto",
    title: "add an image of the pool by its index (Enter)",
    attrs: { type: "number", min: "0", step: "1", placeholder: "index", "aria-label": "image index" },
  });
  const setPage = (p: number) => save("page", p);
  prev.addEventListener("click", () => setPage(Math.max(0, Number(model.get("page")) - 1)));
  next.addEventListener("click", () => setPage(Number(model.get("page")) + 1));
  const add = () => {
    const text = goto.value.trim();
    if (!text) return;
    const i = Number(text);
    const size = Number(model.get("pool_size")) || 0;
    if (!Number.isInteger(i) || i < 0 || i >= size) {
      goto.setAttribute("aria-invalid", "true");
      goto.title = `expected an image index in 0..${size - 1}, got ${text}`;
      return;
    }
    goto.removeAttribute("aria-invalid");
    goto.title = "add an image of the pool by its index (Enter)";
    goto.value = "";
    const indices = model.get("indices") ?? [];
    if (!indices.includes(i)) save("indices", [...indices, i]);
  };
  goto.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") add();
  });
  goto.addEventListener("change", add);
  const el = h("div", { className: "xw-se-pager" }, [
    prev,
    page,
    next,
    pool,
    h("label", { className: "xw-control" }, [h("span", { className: "xw-control-label", text: "image #" }), goto]),
  ]);
  const sync = () => {
    const p = Number(model.get("page")) || 0;
    const size = Number(model.get("pool_size")) || 0;
    prev.disabled = p <= 0;
    next.disabled = !model.get("has_next_page");
    page.textContent = `page ${p + 1}`;
    pool.textContent = `of ${size.toLocaleString("en-US")} images`;
    goto.max = String(Math.max(0, size - 1));
  };
  sync();
  return [el, sync];
}
