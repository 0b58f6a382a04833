// The ExplainerComparison's score table (sorted by a click on a header, the best value of each
// column in bold, a click on a deletion, insertion or sanity score asks for its curves) and the
// curves of the score chosen.
import type { AnyModel } from "@anywidget/types";
import { decodeArray } from "../lib/arrays";
import { curveChart } from "../lib/curve_chart";
import { clear, h } from "../lib/dom";
import { batchSaver } from "../lib/model";
import { formatNumber } from "../lib/scale";
import { SCORE_COLUMNS, bestValues, nextSort, scoreText, sortRows } from "../lib/score_columns";
import type { ComparisonModel } from "./model";

export function drawScores(model: AnyModel<ComparisonModel>, holder: HTMLElement): void {
  clear(holder);
  const rows = model.get("scores") ?? [];
  if (!rows.length) return;
  const sortBy = model.get("sort_by") ?? "";
  const desc = Boolean(model.get("sort_descending"));
  const curve = model.get("curve") ?? {};
  const best = bestValues(rows);
  const save = batchSaver(model);
  const head = h("tr", {}, [h("th", { text: "explainer", attrs: { "data-key": "name" } })]);
  for (const col of SCORE_COLUMNS) {
    const th = h("th", { text: col.text, title: `${col.title}. Click to sort.`, attrs: { "data-key": col.key } });
    if (sortBy === col.key) th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    th.addEventListener("click", () => {
      const [key, d] = nextSort(model.get("sort_by") ?? "", Boolean(model.get("sort_descending")), col.key);
      save({ sort_by: key, sort_descending: d });
    });
    head.appendChild(th);
  }
  head.appendChild(h("th", { text: "time", attrs: { "data-key": "seconds" } }));
  const tbody = h("tbody");
  for (const row of sortRows(rows, sortBy, desc)) {
    const tr = h("tr", { attrs: { "data-explainer": row.name } }, [h("td", { text: row.name })]);
    for (const col of SCORE_COLUMNS) {
      const text = scoreText(row, col.key);
      const td = h("td", { attrs: { "data-key": col.key } });
      const v = row[col.key];
      let cls = best[col.key] !== undefined && v === best[col.key] ? "xw-cmp-best" : "";
      if (col.key === "sanity" && row.sanity !== null) cls = row.sanity ? "xw-cmp-pass" : "xw-cmp-fail";
      let title = col.title;
      if (col.key === "sanity") {
        title = row.sanity_similarity != null ? `similarity ${formatNumber(row.sanity_similarity)} · ${row.sanity_note}` : row.sanity_note;
      }
      if (col.curve && text !== "—" && text !== "n/a") {
        const pressed = curve.explainer === row.name && curve.metric === col.key;
        const b = h("button", {
          className: `xw-cmp-score ${cls}`.trim(),
          text,
          title: `${title}. Click to show the curves.`,
          attrs: { type: "button", "data-metric": col.key, "aria-pressed": String(pressed) },
        });
        b.addEventListener("click", () => save({ curve: pressed ? {} : { explainer: row.name, metric: col.key } }));
        td.appendChild(b);
      } else {
        td.appendChild(h("span", { className: cls, text, title }));
      }
      tr.appendChild(td);
    }
    tr.appendChild(h("td", { text: `${row.seconds.toFixed(1)} s` }));
    tbody.appendChild(tr);
  }
  const stages = Number(model.get("sanity_stages")) || 0;
  const caption =
    `Means over the images. Deletion and insertion hide pixels with ${model.get("masker")} in ${model.get("steps")} steps; ` +
    (stages > 0 ? `the sanity check redraws the layers in ${stages} stages.` : "no sanity check (sanity_stages=0).") +
    " Click a header to sort, a score to see its curves.";
  holder.appendChild(h("div", { className: "xw-cmp-scores-caption", text: caption }));
  holder.appendChild(h("table", { className: "xw-cmp-scores" }, [h("thead", {}, [head]), tbody]));
}

const METRIC_TEXT: Record<string, string> = {
  deletion: "deletion curve",
  insertion: "insertion curve",
  sanity: "sanity check",
  mufidelity: "MuFidelity",
};

export function drawCurve(model: AnyModel<ComparisonModel>, holder: HTMLElement): void {
  clear(holder);
  const x = decodeArray(model.get("curve_x"));
  const y = decodeArray(model.get("curve_y"));
  const info = model.get("curve_info") ?? {};
  if (!x || !y || y.shape.length !== 2 || y.shape[1] !== x.shape[0]) return;
  // a scatter's x is not sorted: the chart spans its extent, dots need no order
  const s = x.shape[0];
  const curves = Array.from({ length: y.shape[0] }, (_, k) => y.data.subarray(k * s, (k + 1) * s));
  const what = METRIC_TEXT[info.metric ?? ""] ?? info.metric ?? "";
  const scatter = info.kind === "scatter";
  const summary = info.metric === "sanity" ? "similarity with every layer redrawn" : scatter ? "correlation" : "area";
  const shows = scatter ? "each dot a random pixel subset of an image" : "mean (thick) and each image";
  const value = info.area == null ? "—" : formatNumber(info.area);
  const title = `${info.explainer ?? ""} · ${what} · ${summary} ${value} (${info.better ?? ""} is better) · ${shows}`;
  const chart = curveChart({
    x: x.data,
    curves,
    width: 360,
    height: 180,
    xLabel: info.x_label,
    yLabel: info.y_label,
    yRange: info.metric === "sanity" ? [-1, 1] : undefined,
    threshold: info.metric === "sanity" ? (info.threshold ?? null) : null,
    scatter,
  });
  holder.appendChild(
    h("div", { className: "xw-cmp-curve", attrs: { "data-metric": info.metric ?? "", "data-explainer": info.explainer ?? "" } }, [
      h("div", { className: "xw-cmp-curve-title", text: title }),
      chart as unknown as HTMLElement,
    ]),
  );
}
