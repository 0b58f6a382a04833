// Colour maps. A map takes a number and returns [r, g, b, a] with each channel 0..255.
import palette from "../../../xaiwidgets/palette.json";

export type RGBA = [number, number, number, number];
export type ColorMap = (t: number) => RGBA;

/** Colour of positive attributions (red) and negative ones (blue), shared with the static plots. */
export const POSITIVE_RGB = palette.positive as [number, number, number];
export const NEGATIVE_RGB = palette.negative as [number, number, number];

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/**
 * Diverging map for t in [-1, 1] (value / max|value|): positive red, negative blue, alpha
 * growing linearly with |t| so that values near 0 are transparent. NaN is transparent.
 */
export function diverging(t: number): RGBA {
  if (!Number.isFinite(t)) return [255, 255, 255, 0];
  const c = clamp(t, -1, 1);
  const rgb = c >= 0 ? POSITIVE_RGB : NEGATIVE_RGB;
  return [rgb[0], rgb[1], rgb[2], Math.round(Math.abs(c) * 255)];
}

// control points of a perceptually ordered dark-blue -> teal -> yellow map
const SEQ_STOPS: [number, number, number][] = [
  [48, 18, 84],
  [58, 82, 139],
  [33, 142, 141],
  [94, 201, 98],
  [250, 230, 35],
];

/** Sequential opaque map for t in [0, 1] (dark blue at 0 -> yellow at 1). NaN is transparent. */
export function sequential(t: number): RGBA {
  if (!Number.isFinite(t)) return [255, 255, 255, 0];
  const x = clamp(t, 0, 1) * (SEQ_STOPS.length - 1);
  const i = Math.min(Math.floor(x), SEQ_STOPS.length - 2);
  const f = x - i;
  const a = SEQ_STOPS[i];
  const b = SEQ_STOPS[i + 1];
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
    255,
  ];
}

/** Alpha-composite `top` (with its alpha) over an opaque `base` colour. */
export function over(top: RGBA, base: [number, number, number]): [number, number, number] {
  const a = top[3] / 255;
  return [
    Math.round(top[0] * a + base[0] * (1 - a)),
    Math.round(top[1] * a + base[1] * (1 - a)),
    Math.round(top[2] * a + base[2] * (1 - a)),
  ];
}

/** CSS colour string of a map entry. */
export function css(c: RGBA): string {
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${(c[3] / 255).toFixed(3)})`;
}
