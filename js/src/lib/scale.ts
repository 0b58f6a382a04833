// Scales: symmetric max-|x| domains, nice ticks and number formatting.
import type { NumericArray } from "./arrays";

/** max |x| over data[start:end] ignoring NaN; 0 when empty or all NaN. */
export function maxAbs(data: ArrayLike<number>, start = 0, end = data.length): number {
  let m = 0;
  for (let i = start; i < end; i++) {
    const v = Math.abs(data[i]);
    if (v > m) m = v; // NaN compares false
  }
  return m;
}

/** [min, max] over data[start:end] ignoring NaN; [0, 0] when empty or all NaN. */
export function extent(data: ArrayLike<number>, start = 0, end = data.length): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = start; i < end; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/** The half-width of a symmetric domain [-m, m]: max |x|, or 1 when everything is 0. */
export function symmetricMax(data: NumericArray | ArrayLike<number>, start = 0, end = data.length): number {
  const m = maxAbs(data, start, end);
  return m > 0 && Number.isFinite(m) ? m : 1;
}

/** A "nice" step (1, 2 or 5 times a power of ten) near span / count. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  const nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nice * p;
}

/**
 * Nice round tick values inside [lo, hi]: about `count` of them, at least 3 when the domain
 * allows (a short colour bar still gets -a, 0, a), always including 0 when in range.
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  let ticks = ticksWithStep(lo, hi, niceStep(hi - lo, count));
  for (let c = count * 2, tries = 0; ticks.length < 3 && tries < 4; c *= 2, tries++) {
    ticks = ticksWithStep(lo, hi, niceStep(hi - lo, c));
  }
  return ticks;
}

function ticksWithStep(lo: number, hi: number, step: number): number[] {
  // tolerance: float32 data makes 0.01 arrive as 0.0099999998, still a tick of [-0.01, 0.01]
  const first = Math.ceil(lo / step - 1e-6);
  const last = Math.floor(hi / step + 1e-6);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) {
    const v = i * step;
    // snap floating-point dust (0.30000000000000004 -> 0.3, -0 -> 0)
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return ticks;
}

/** Format a number for ticks and tooltips: 3 significant digits, exponent when tiny/huge. */
export function formatNumber(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(digits - 1).replace("e+", "e");
  return String(Number(v.toPrecision(digits)));
}

/** Like formatNumber, with an explicit "+" on positive values (attributions). */
export function formatSigned(v: number, digits = 3): string {
  const s = formatNumber(v, digits);
  return v > 0 ? `+${s}` : s;
}
