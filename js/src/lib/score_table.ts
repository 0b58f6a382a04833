// A table of scored settings (masker, explainer, evals, deletion area with a bar), sorted best
// first; a click on a row that is not shown now picks that setting. Strings are set as text.
import { h } from "./dom";
import { formatNumber } from "./scale";

export interface ScoreRow {
  masker: string;
  algorithm: string;
  max_evals: number;
  area: number;
  area_masker: string;
  current: boolean;
}

export const SCORE_CSS = `
.xw-se-scores-title { margin-top: 12px; font-size: 11px; color: var(--jp-ui-font-color2, #59636e); }
.xw-se-scores { margin-top: 3px; border-collapse: collapse; font-size: 11px; font-variant-numeric: tabular-nums; }
.xw-se-scores th, .xw-se-scores td { padding: 2px 10px 2px 0; text-align: left; }
.xw-se-scores th { font-weight: 500; color: var(--jp-ui-font-color2, #59636e); border-bottom: 1px solid rgba(127,127,127,.35); }
.xw-se-scores tbody tr { cursor: pointer; }
.xw-se-scores tbody tr:hover { background: rgba(47,111,223,.08); }
.xw-se-scores tr.xw-se-current td { font-weight: 600; }
.xw-se-bar { display: inline-block; height: 8px; background: #2f6fdf; opacity: .55; vertical-align: middle; margin-right: 6px; }
`;

/** The table (or null for fewer than two rows: nothing to compare). Rows come sorted. */
export function scoreTable(scores: ScoreRow[], onPick: (row: ScoreRow) => void): HTMLElement | null {
  if (scores.length < 2) return null;
  const top = Math.max(...scores.map((s) => s.area), 1e-12);
  const title = h("div", {
    className: "xw-se-scores-title",
    text: "Deletion area of the predicted class, these images: lower = more faithful. Click a row to show it.",
  });
  const table = h("table", { className: "xw-se-scores" }, [
    h("thead", {}, [h("tr", {}, ["masker", "explainer", "evals", "deletion area"].map((t) => h("th", { text: t })))]),
  ]);
  const tbody = h("tbody");
  scores.forEach((s, k) => {
    const bar = h("span", { className: "xw-se-bar" });
    bar.style.width = `${Math.max(2, (60 * s.area) / top)}px`;
    const tr = h("tr", { className: s.current ? "xw-se-current" : "", attrs: { "data-masker": s.masker }, title: `scored with ${s.area_masker}` }, [
      h("td", { text: `${k === 0 ? "★ " : ""}${s.masker}` }),
      h("td", { text: s.algorithm }),
      h("td", { text: String(s.max_evals) }),
      h("td", {}, [bar, h("span", { text: formatNumber(s.area) })]),
    ]);
    tr.addEventListener("click", () => {
      if (!s.current) onPick(s);
    });
    tbody.appendChild(tr);
  });
  table.appendChild(tbody);
  return h("div", { className: "xw-se-score-table" }, [title, table]);
}
