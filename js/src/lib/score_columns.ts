// The score table of an explainer comparison, as data: its columns (which way is better,
// which have curves), sorting with missing values last, and the best value of each column.
// Pure functions of the rows Python sent (no DOM), unit-tested on their own.
import { formatNumber } from "./scale";

/** One explainer's row, as ExplainerComparison.scores sends it (None -> null). */
export interface ScoreRow {
  name: string;
  deletion: number | null;
  insertion: number | null;
  mufidelity: number | null;
  sparseness: number | null;
  sanity: boolean | null;
  sanity_similarity: number | null;
  sanity_note: string;
  seconds: number;
}

/** The score columns of the table: key, header, hover text, which way is better, clickable (has a curve). */
export const SCORE_COLUMNS: { key: keyof ScoreRow; text: string; title: string; better: "low" | "high" | ""; curve: boolean }[] = [
  { key: "deletion", text: "deletion ↓", title: "area under the deletion curve: lower = more faithful", better: "low", curve: true },
  { key: "insertion", text: "insertion ↑", title: "area under the insertion curve: higher = more faithful", better: "high", curve: true },
  { key: "mufidelity", text: "MuFidelity ↑", title: "correlation of attribution sums with output drops: 1 is best", better: "high", curve: true },
  { key: "sparseness", text: "sparseness", title: "Gini index of |attribution|: 1 = one pixel holds all of it", better: "", curve: false },
  { key: "sanity", text: "sanity check", title: "model randomisation (Adebayo et al. 2018): passed = the explanation changes when the weights are redrawn", better: "", curve: true },
];

/** Rows sorted by `key` (null / missing values last, ties in the given order); "" keeps the order. */
export function sortRows(rows: ScoreRow[], key: string, descending: boolean): ScoreRow[] {
  if (!key) return rows.slice();
  const value = (r: ScoreRow): number | null => {
    const v = (r as unknown as Record<string, unknown>)[key];
    if (typeof v === "boolean") return v ? 1 : 0;
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  };
  return rows
    .map((r, i) => ({ r, i, v: value(r) }))
    .sort((a, b) => {
      if (a.v === null || b.v === null) return a.v === b.v ? a.i - b.i : a.v === null ? 1 : -1;
      const d = descending ? b.v - a.v : a.v - b.v;
      return d !== 0 ? d : a.i - b.i;
    })
    .map((x) => x.r);
}

/** The next sort after a click on header `key`: a new key sorts best first, the same key flips. */
export function nextSort(current: string, descending: boolean, key: string): [string, boolean] {
  if (current === key) return [key, !descending];
  const col = SCORE_COLUMNS.find((c) => c.key === key);
  return [key, col?.better === "high" || key === "sanity"];
}

/** The text of a score cell: a number, "—" where none, and the sanity check in words. */
export function scoreText(row: ScoreRow, key: keyof ScoreRow): string {
  if (key === "sanity") return row.sanity === null ? "n/a" : row.sanity ? "passed" : "FAILED";
  const v = row[key];
  return typeof v === "number" && Number.isFinite(v) ? formatNumber(v) : "—";
}

/** The best value of each score over the rows (for bold): min for "low", max for "high". */
export function bestValues(rows: ScoreRow[]): Record<string, number> {
  const best: Record<string, number> = {};
  for (const col of SCORE_COLUMNS) {
    if (!col.better) continue;
    const vals = rows.map((r) => r[col.key]).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
    if (vals.length > 1) best[col.key] = col.better === "low" ? Math.min(...vals) : Math.max(...vals);
  }
  return best;
}
