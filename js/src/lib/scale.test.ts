import { describe, expect, it } from "vitest";
import { extent, formatNumber, formatSigned, maxAbs, niceStep, niceTicks, symmetricMax } from "./scale";

describe("symmetric scale", () => {
  it("maxAbs over a range, ignoring NaN", () => {
    const a = new Float32Array([0.5, -3, 2, Number.NaN, 1]);
    expect(maxAbs(a)).toBe(3);
    expect(maxAbs(a, 2, 5)).toBe(2);
    expect(maxAbs(new Float32Array(0))).toBe(0);
  });

  it("symmetricMax falls back to 1 when everything is 0", () => {
    expect(symmetricMax(new Float32Array([0, 0]))).toBe(1);
    expect(symmetricMax(new Float32Array([0, -0.25]))).toBe(0.25);
  });

  it("extent", () => {
    expect(extent([3, -1, 2])).toEqual([-1, 3]);
    expect(extent([])).toEqual([0, 0]);
  });
});

describe("niceTicks", () => {
  it("gives round values inside the domain, including 0", () => {
    expect(niceTicks(-1, 1, 4)).toEqual([-1, -0.5, 0, 0.5, 1]);
    const t = niceTicks(-0.0372, 0.0372, 5);
    expect(t).toContain(0);
    expect(t[0]).toBeGreaterThanOrEqual(-0.0372);
    expect(t[t.length - 1]).toBeLessThanOrEqual(0.0372);
    expect(t).toEqual([-0.03, -0.02, -0.01, 0, 0.01, 0.02, 0.03]);
  });

  it("steps are 1, 2 or 5 times a power of ten", () => {
    for (const [span, n] of [[7.3, 5], [0.0042, 4], [1234, 6], [1, 3]] as const) {
      const s = niceStep(span, n);
      const m = s / Math.pow(10, Math.floor(Math.log10(s) + 1e-9));
      expect([1, 2, 5]).toContain(Math.round(m));
    }
  });

  it("keeps an end tick that float32 rounding put just inside the domain", () => {
    const m = Math.fround(0.01); // 0.009999999776
    expect(niceTicks(-m, m, 2)).toEqual([-0.01, 0, 0.01]);
  });

  it("at least 3 ticks on a short bar", () => {
    expect(niceTicks(-0.9, 0.9, 2)).toEqual([-0.5, 0, 0.5]);
    expect(niceTicks(-0.0042, 0.0042, 1)).toEqual([-0.004, -0.002, 0, 0.002, 0.004]);
  });

  it("degenerate domains", () => {
    expect(niceTicks(2, 2)).toEqual([2]);
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
  });
});

describe("formatNumber", () => {
  it("three significant digits, exponent when tiny or huge, sign for attributions", () => {
    expect(formatNumber(0.123456)).toBe("0.123");
    expect(formatNumber(12.345)).toBe("12.3");
    expect(formatNumber(0)).toBe("0");
    expect(formatNumber(0.0000123)).toBe("1.23e-5");
    expect(formatNumber(123456)).toBe("1.23e5");
    expect(formatSigned(0.5)).toBe("+0.5");
    expect(formatSigned(-0.5)).toBe("-0.5");
  });
});
