// An image picker: thumbnails grouped into correct and wrong predictions (or one group when
// the true labels are unknown). A click toggles an image; "show these" selects a group's first
// few. Every string is set as text.
import type { NDArray } from "./arrays";
import { h } from "./dom";
import { drawRGBA, imageRGBA } from "./image";
import { formatProbability } from "./labels";

export interface PickItem {
  index: number;
  /** true class name, or null when unknown */
  label: string | null;
  predicted: string;
  probability: number;
  /** null when the true label is unknown */
  correct: boolean | null;
}

export const PICKER_CSS = `
.xw-pick { display: flex; flex-direction: column; gap: 4px; margin: 0 0 8px; }
.xw-pick-group { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; }
.xw-pick-title { min-width: 76px; font-size: 11px; color: var(--jp-ui-font-color2, #59636e); }
.xw-pick-title.xw-pick-wrong { color: #b42318; }
.xw-pick-chip { display: flex; flex-direction: column; align-items: center; gap: 1px; padding: 2px;
  border: 1px solid rgba(127,127,127,.35); border-radius: 4px; background: transparent; color: inherit;
  font: inherit; font-size: 10px; line-height: 12px; cursor: pointer; }
.xw-pick-chip[aria-pressed="true"] { border-color: #2f6fdf; box-shadow: 0 0 0 1px #2f6fdf; background: rgba(47,111,223,.08); }
.xw-pick-chip canvas { display: block; image-rendering: pixelated; }
.xw-pick-chip.xw-pick-wrong .xw-pick-caption { color: #b42318; }
.xw-pick-caption { font-variant-numeric: tabular-nums; white-space: nowrap; max-width: 60px; overflow: hidden; text-overflow: ellipsis; }
.xw-pick-all { border: none; background: transparent; color: #2f6fdf; cursor: pointer; font: inherit; font-size: 11px; padding: 0 4px; }
`;

/** "#12 · true Coat · predicted Shirt 0.81 · wrong" */
export function pickTitle(item: PickItem): string {
  const parts = [`#${item.index}`];
  if (item.label != null) parts.push(`true ${item.label}`);
  parts.push(`predicted ${item.predicted} ${formatProbability(item.probability)}`);
  if (item.correct === false) parts.push("wrong");
  return parts.join(" · ");
}

/** Short caption under a thumbnail: "7" when right, "4→9" when wrong. */
export function pickCaption(item: PickItem): string {
  if (item.correct === false && item.label != null) return `${item.label}→${item.predicted}`;
  return item.label ?? item.predicted;
}

export interface Picker {
  el: HTMLElement;
  update(thumbs: NDArray | null, items: PickItem[], selected: number[]): void;
}

/**
 * The picker element. `onChange(indices)` gets the new selection (never empty: unselecting
 * the last image is ignored). `groupSize` is how many images "show these" selects.
 */
export function imagePicker(onChange: (indices: number[]) => void, thumbSize = 34, groupSize = 4): Picker {
  const el = h("div", { className: "xw-pick" });
  let selected: number[] = [];
  const toggle = (index: number) => {
    const next = selected.includes(index) ? selected.filter((i) => i !== index) : [...selected, index];
    if (next.length) onChange(next);
  };
  const update = (thumbs: NDArray | null, items: PickItem[], sel: number[]) => {
    selected = [...sel];
    while (el.firstChild) el.removeChild(el.firstChild);
    if (!thumbs || thumbs.shape.length !== 4 || !items.length) return;
    const [, th, tw, tc] = thumbs.shape;
    const known = items.some((it) => it.correct != null);
    const groups: [string, string, PickItem[]][] = known
      ? [
          ["correct ✓", "correct", items.filter((it) => it.correct !== false)],
          ["wrong ✗", "wrong", items.filter((it) => it.correct === false)],
        ]
      : [["images", "all", items]];
    const position = new Map(items.map((it, k) => [it.index, k]));
    for (const [title, kind, group] of groups) {
      if (!group.length) continue;
      const row = h("div", { className: "xw-pick-group", attrs: { "data-group": kind } });
      row.appendChild(
        h("span", { className: `xw-pick-title${kind === "wrong" ? " xw-pick-wrong" : ""}`, text: title }),
      );
      for (const item of group) {
        const k = position.get(item.index)!;
        const canvas = h("canvas");
        const size = th * tw * tc;
        drawRGBA(
          canvas,
          imageRGBA({ data: thumbs.data, offset: k * size, h: th, w: tw, c: tc }),
          tw,
          th,
          thumbSize,
          Math.round((thumbSize * th) / tw),
        );
        const chip = h(
          "button",
          {
            className: `xw-pick-chip${item.correct === false ? " xw-pick-wrong" : ""}`,
            title: pickTitle(item),
            attrs: { type: "button", "data-index": String(item.index), "aria-pressed": String(selected.includes(item.index)) },
          },
          [canvas, h("span", { className: "xw-pick-caption", text: pickCaption(item) })],
        );
        chip.addEventListener("click", () => toggle(item.index));
        row.appendChild(chip);
      }
      const all = h("button", {
        className: "xw-pick-all",
        text: `show first ${Math.min(groupSize, group.length)}`,
        title: `explain the first ${Math.min(groupSize, group.length)} images of this group`,
        attrs: { type: "button", "data-action": `first-${kind}` },
      });
      all.addEventListener("click", () => onChange(group.slice(0, groupSize).map((it) => it.index)));
      row.appendChild(all);
      el.appendChild(row);
    }
  };
  return { el, update };
}
