// AttributionGrid: rows = images; the first column shows the image, then one column per
// explained output, its attribution map drawn with a diverging colour map over a faint grey
// copy of the image. A label (class name + probability) sits above each output cell.
//
// Each row is ONE canvas (all its cells) and rows are drawn only near the viewport (LazyRows),
// so 1,000 images x 10 classes stay light. The cell size comes from the image size and the
// output area's width (cells shrink to fit, then a row wraps onto more lines); redraws are
// coalesced to one per animation frame, and a colour-only change repaints the drawn rows only.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { type GridModel, GRID_CSS, Grid, decodeGrid, layoutOf, sameLayout } from "./lib/attribution_rows";
import { checkbox, segmented, slider } from "./lib/controls";
import { clear, h } from "./lib/dom";
import { type View, mountView } from "./lib/view";
import { saver } from "./lib/model";

export type { GridModel } from "./lib/attribution_rows";

const DATA_KEYS = [
  "images",
  "values",
  "output_labels",
  "output_probabilities",
  "row_titles",
  "true_columns",
  "wrong_rows",
  "predicted_names",
  "cell_size",
  "show_colorbar",
  "show_controls",
  "title",
  "colorbar_label",
];
/** Keys whose change only recolours: the drawn rows are repainted, nothing is laid out again. */
const COLOUR_KEYS = ["scale_mode", "invert_image"];

/** Width the grid may take from the host element's (the output area's) width; 0 when unknown. */
function usableWidth(hostWidth: number): number {
  return hostWidth > 0 ? hostWidth - 8 : 0; // the root's padding and a little air
}

function buildControls(model: AnyModel<GridModel>, effectiveCell: () => number): [HTMLElement, () => void] {
  const save = saver(model);
  const scale = segmented(
    "scale",
    [
      { value: "grid", text: "grid", title: "one colour scale for the whole grid" },
      { value: "row", text: "per row", title: "one colour scale per image" },
    ],
    model.get("scale_mode"),
    (v) => save("scale_mode", v),
  );
  const size = slider(
    "cell size",
    24,
    256,
    4,
    model.get("cell_size") || effectiveCell(),
    (v) => save("cell_size", v),
    (v) => `${v}px`,
  );
  // back to the automatic size (from the image size, fitted to the output width)
  const fit = h("button", {
    className: "xw-seg-button xw-ag-fit",
    text: "fit",
    title: "cell size from the image size, fitted to the output width",
    attrs: { type: "button" },
  });
  fit.addEventListener("click", () => save("cell_size", 0));
  size.el.appendChild(h("div", { className: "xw-seg" }, [fit]));
  const invert = checkbox("invert image", model.get("invert_image"), (v) => save("invert_image", v));
  const el = h("div", { className: "xw-controls" }, [scale.el, size.el, invert.el]);
  const sync = () => {
    scale.set(model.get("scale_mode"));
    size.set(model.get("cell_size") || effectiveCell());
    fit.setAttribute("aria-pressed", String(!model.get("cell_size")));
    invert.set(model.get("invert_image"));
    el.style.display = model.get("show_controls") === false ? "none" : "";
  };
  sync();
  return [el, sync];
}

/** "‹ rows 21–40 of 312 ›": moves the `page` trait; hidden without paging (page_size 0 or
 *  every row on one page). Python reads the page's rows and sends them as the data traits. */
export function buildPager(model: AnyModel<GridModel>): [HTMLElement, () => void] {
  const pages = () => {
    const size = model.get("page_size") || 0;
    const count = model.get("row_count") || 0;
    return size > 0 ? Math.max(1, Math.ceil(count / size)) : 1;
  };
  const go = (delta: number) => {
    const page = Math.min(Math.max(0, (model.get("page") || 0) + delta), pages() - 1);
    model.set("page", page);
    model.save_changes();
  };
  const button = (text: string, title: string, delta: number) => {
    const b = h("button", { className: "xw-seg-button", text, title, attrs: { type: "button" } });
    b.addEventListener("click", () => go(delta));
    return b;
  };
  const prev = button("‹ prev", "previous page", -1);
  const next = button("next ›", "next page", +1);
  const label = h("span", { className: "xw-ag-page-label" });
  const el = h("div", { className: "xw-controls xw-ag-pager" }, [prev, label, next]);
  const sync = () => {
    const size = model.get("page_size") || 0;
    const count = model.get("row_count") || 0;
    const page = model.get("page") || 0;
    el.style.display = size > 0 && count > size ? "" : "none";
    const first = Math.min(count, page * size + 1);
    const last = Math.min(count, (page + 1) * size);
    label.textContent = `rows ${first}–${last} of ${count} · page ${page + 1} of ${pages()}`;
    prev.disabled = page <= 0;
    next.disabled = page >= pages() - 1;
  };
  sync();
  return [el, sync];
}

const nextFrame: (f: () => void) => unknown =
  typeof requestAnimationFrame === "function" ? (f) => requestAnimationFrame(f) : (f) => setTimeout(f, 16);

function render({ model, el }: Pick<RenderProps<GridModel>, "model" | "el">): () => void {
  let grid: Grid | null = null;
  let view: View | null = null;
  let body: HTMLElement | null = null;
  let syncControls: () => void = () => {};
  let mounting = true;
  let framePending = false;
  let disposed = false;
  const changed = new Set<string>();
  // measured once here (a forced layout); later widths come from the ResizeObserver
  let width = usableWidth(el.clientWidth);

  const draw = () => {
    const keys = Array.from(changed);
    changed.clear();
    if (grid && keys.length > 0 && keys.every((k) => COLOUR_KEYS.includes(k) || k === "width")) {
      // a new width that changes neither the cell size nor the wrapping draws nothing
      const relayout = keys.includes("width") && !sameLayout(grid.layout, layoutOf(model, grid.d, width));
      if (!relayout) {
        if (keys.some((k) => COLOUR_KEYS.includes(k))) grid.recolour();
        return;
      }
    }
    grid?.dispose();
    grid = null;
    const d = decodeGrid(model);
    if (!d) return clear(body!);
    const next = new Grid(model, d, width, view!.tooltip);
    body!.replaceChildren(next.el);
    grid = next;
    syncControls();
  };
  // one redraw per animation frame, whatever the number of changes (a dragged slider)
  const schedule = (key: string) => {
    changed.add(key);
    if (mounting || framePending) return;
    framePending = true;
    nextFrame(() => {
      framePending = false;
      if (!disposed) view?.redraw();
    });
  };

  const cleanup = mountView(model as AnyModel, el, {
    className: "xw-attribution-grid",
    styles: [["attribution-grid", GRID_CSS]],
    build: (v) => {
      view = v;
      const [controls, sync] = buildControls(model, () => grid?.layout.cell ?? 84);
      const [pager, syncPager] = buildPager(model);
      syncControls = sync;
      body = h("div", { className: "xw-ag-body" });
      return {
        children: [v.title, v.status!.el, controls, pager, body],
        body,
        before: sync,
        draw,
        bindings: [
          [[], () => v.redraw()], // the first draw, synchronous
          [["page", "page_size", "row_count"], syncPager],
          ...[...DATA_KEYS, ...COLOUR_KEYS].map((k): [string[], () => void] => [[k], () => schedule(k)]),
        ],
      };
    },
  });
  mounting = false;
  changed.clear();

  // lay out again when the output area's width changes the cell size or the wrapping
  const resize =
    typeof ResizeObserver === "undefined"
      ? null
      : new ResizeObserver((entries) => {
          const w = usableWidth(entries[entries.length - 1].contentRect.width);
          if (Math.abs(w - width) < 1) return;
          width = w;
          schedule("width");
        });
  resize?.observe(el);
  return () => {
    disposed = true;
    resize?.disconnect();
    grid?.dispose();
    cleanup();
  };
}

export default { render };
