import { describe, expect, it } from "vitest";
import { NEGATIVE_RGB, POSITIVE_RGB, diverging, over, sequential } from "./colormap";

describe("diverging", () => {
  it("is red for positive, blue for negative, transparent at 0", () => {
    expect(diverging(1)).toEqual([...POSITIVE_RGB, 255]);
    expect(diverging(-1)).toEqual([...NEGATIVE_RGB, 255]);
    expect(diverging(0)[3]).toBe(0);
    expect(POSITIVE_RGB[0]).toBeGreaterThan(POSITIVE_RGB[2]); // red
    expect(NEGATIVE_RGB[2]).toBeGreaterThan(NEGATIVE_RGB[0]); // blue
  });

  it("is symmetric in alpha and clamps outside [-1, 1]", () => {
    for (const t of [0.1, 0.37, 0.5, 0.9]) expect(diverging(t)[3]).toBe(diverging(-t)[3]);
    expect(diverging(0.5)[3]).toBe(128);
    expect(diverging(7)).toEqual(diverging(1));
    expect(diverging(-7)).toEqual(diverging(-1));
  });

  it("alpha grows with |t|", () => {
    const alphas = [0, 0.2, 0.4, 0.6, 0.8, 1].map((t) => diverging(t)[3]);
    for (let i = 1; i < alphas.length; i++) expect(alphas[i]).toBeGreaterThan(alphas[i - 1]);
  });

  it("NaN is transparent", () => {
    expect(diverging(Number.NaN)[3]).toBe(0);
  });
});

describe("sequential", () => {
  it("is opaque, ordered by brightness, clamped", () => {
    const lum = (c: number[]) => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    const ts = [0, 0.25, 0.5, 0.75, 1];
    const cs = ts.map(sequential);
    cs.forEach((c) => expect(c[3]).toBe(255));
    for (let i = 1; i < cs.length; i++) expect(lum(cs[i])).toBeGreaterThan(lum(cs[i - 1]));
    expect(sequential(-3)).toEqual(sequential(0));
    expect(sequential(3)).toEqual(sequential(1));
  });
});

describe("over", () => {
  it("composites with alpha over an opaque base", () => {
    expect(over([255, 0, 0, 255], [0, 0, 255])).toEqual([255, 0, 0]);
    expect(over([255, 0, 0, 0], [0, 0, 255])).toEqual([0, 0, 255]);
    expect(over([200, 100, 0, 128], [0, 0, 0])).toEqual([100, 50, 0]);
  });
});
