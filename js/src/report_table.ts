// ReportTable: a small table of strings (the classification report). Cells are set as text.
// Clicking a body row sets `selected_row` and highlights it; `highlight` marks a row (in a
// MetricsView: the true class of the clicked confusion cell, or the clicked report row).
import type { AnyModel, RenderProps } from "@anywidget/types";
import { clear, h } from "./lib/dom";
import { mountView } from "./lib/view";

export interface TableModel {
  columns: string[];
  rows: string[][];
  footer: string[][];
  highlight: number;
  selected_row: number;
  title: string;
  error: string;
  progress: number;
}

const CSS = `
.xw-rt-table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.xw-rt-table th, .xw-rt-table td { padding: 2px 8px; text-align: right; white-space: nowrap; }
.xw-rt-table th:first-child, .xw-rt-table td:first-child { text-align: left; font-weight: 600; }
.xw-rt-table thead th { border-bottom: 1px solid rgba(127,127,127,.55); font-weight: 600; }
.xw-rt-table tbody tr { cursor: pointer; }
.xw-rt-table tbody tr:hover { background: rgba(47,111,223,.08); }
.xw-rt-table tbody tr.xw-rt-highlight { background: rgba(47,111,223,.16); }
.xw-rt-table tfoot tr:first-child td { border-top: 1px solid rgba(127,127,127,.55); }
.xw-rt-table tfoot td { color: var(--jp-ui-font-color1, #1f2328); }
`;

const REDRAW_ON = ["columns", "rows", "footer", "highlight", "title"];

function row(cells: string[], tag: "td" | "th"): HTMLTableRowElement {
  return h("tr", {}, cells.map((c) => h(tag, { text: String(c) })));
}

function draw(model: AnyModel<TableModel>, body: HTMLElement, titleEl: HTMLElement): void {
  clear(body);
  const title = model.get("title") ?? "";
  titleEl.textContent = title;
  titleEl.style.display = title ? "" : "none";
  const highlight = Number(model.get("highlight"));
  const thead = h("thead", {}, [row(model.get("columns") ?? [], "th")]);
  const tbody = h("tbody");
  (model.get("rows") ?? []).forEach((cells, i) => {
    const tr = row(cells, "td");
    tr.setAttribute("data-row", String(i));
    if (i === highlight) tr.classList.add("xw-rt-highlight");
    tr.addEventListener("click", () => {
      model.set("selected_row", i);
      model.set("highlight", i); // also when the row was clicked before and a cell moved it
      model.save_changes();
    });
    tbody.appendChild(tr);
  });
  const tfoot = h("tfoot", {}, (model.get("footer") ?? []).map((cells) => row(cells, "td")));
  body.appendChild(h("table", { className: "xw-rt-table" }, [thead, tbody, tfoot]));
}

function render({ model, el }: Pick<RenderProps<TableModel>, "model" | "el">): () => void {
  return mountView(model as AnyModel, el, {
    className: "xw-report-table",
    styles: [["report-table", CSS]],
    status: false,
    tooltip: false,
    build: (view) => {
      const body = h("div");
      return {
        children: [view.title, body],
        body,
        syncTitle: false,
        draw: () => draw(model, body, view.title),
        bindings: [[REDRAW_ON, view.redraw]],
      };
    },
  });
}

export default { render };
