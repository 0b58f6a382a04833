// A vertical colour bar with numeric ticks, for any colour map over a value domain.
import { type RGBA, over } from "./colormap";
import { h } from "./dom";
import { formatNumber, niceTicks } from "./scale";

export interface ColorbarOptions {
  /** value at the bottom and at the top of the bar */
  lo: number;
  hi: number;
  /** colour of a value (alpha is composited over white, as in the cells) */
  colorOf: (v: number) => RGBA;
  /** bar length in CSS pixels */
  length: number;
  /** caption under the bar (e.g. "attribution"), set as text */
  caption?: string;
  /** about how many ticks */
  ticks?: number;
}

/** Build the colour bar element: a gradient canvas and tick labels placed at their values. */
export function createColorbar(opts: ColorbarOptions): HTMLElement {
  const { lo, hi, length } = opts;
  const barWidth = 12;
  const bar = h("canvas", { className: "xw-cbar-canvas" });
  bar.width = barWidth;
  bar.height = Math.max(1, Math.round(length));
  bar.style.width = `${barWidth}px`;
  bar.style.height = `${length}px`;
  const ctx = bar.getContext("2d");
  if (ctx) {
    const img = ctx.createImageData(barWidth, bar.height);
    for (let y = 0; y < bar.height; y++) {
      const v = hi - ((y + 0.5) / bar.height) * (hi - lo);
      const c = over(opts.colorOf(v), [255, 255, 255]);
      for (let x = 0; x < barWidth; x++) {
        const k = (y * barWidth + x) * 4;
        img.data[k] = c[0];
        img.data[k + 1] = c[1];
        img.data[k + 2] = c[2];
        img.data[k + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }
  const ticks = h("div", { className: "xw-cbar-ticks", style: { height: `${length}px` } });
  const count = opts.ticks ?? Math.max(2, Math.min(6, Math.floor(length / 40)));
  for (const v of niceTicks(lo, hi, count)) {
    const frac = hi > lo ? (hi - v) / (hi - lo) : 0.5;
    ticks.appendChild(
      h("div", {
        className: "xw-cbar-tick",
        text: formatNumber(v),
        style: { top: `${frac * length}px` },
        attrs: { "data-value": String(v) },
      }),
    );
  }
  const body = h("div", { className: "xw-cbar-body" }, [bar, ticks]);
  const caption = opts.caption ? h("div", { className: "xw-cbar-caption", text: opts.caption }) : null;
  return h("div", { className: "xw-cbar" }, [body, caption]);
}
