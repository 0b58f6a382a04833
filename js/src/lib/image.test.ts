import { describe, expect, it } from "vitest";
import { diverging } from "./colormap";
import { greyLevels, imageRGBA, overlayRGBA, underlay } from "./image";

describe("imageRGBA", () => {
  it("normalises a grey image of any range to 0..255", () => {
    const data = new Float32Array([-5, 0, 5, 15]); // 2x2x1
    const rgba = imageRGBA({ data, offset: 0, h: 2, w: 2, c: 1 });
    expect(Array.from(rgba.filter((_, i) => i % 4 === 0))).toEqual([0, 64, 128, 255]);
    expect(rgba[3]).toBe(255);
    const inv = imageRGBA({ data, offset: 0, h: 2, w: 2, c: 1 }, true);
    expect(inv[0]).toBe(255);
    expect(inv[12]).toBe(0);
  });

  it("reads RGB channels at the image offset", () => {
    const data = new Float32Array([9, 9, 9, /* from offset 3: two RGB pixels */ 0, 1, 0.5, 1, 0, 0]);
    const rgba = imageRGBA({ data, offset: 3, h: 1, w: 2, c: 3 });
    expect(Array.from(rgba.slice(0, 4))).toEqual([0, 255, 128, 255]);
    expect(Array.from(rgba.slice(4, 8))).toEqual([255, 0, 0, 255]);
  });

  it("a constant image is mid grey", () => {
    const rgba = imageRGBA({ data: new Float32Array([3, 3]), offset: 0, h: 1, w: 2, c: 1 });
    expect(rgba[0]).toBe(128);
  });
});

describe("overlayRGBA", () => {
  it("red where positive, blue where negative, faint grey image where 0", () => {
    const grey = greyLevels({ data: new Float32Array([0, 1, 0]), offset: 0, h: 1, w: 3, c: 1 });
    // values laid out (h, w, o=2); the overlay of output 1 reads every second value
    const values = new Float32Array([9, 2, 9, -2, 9, 0]);
    const rgba = overlayRGBA({ data: values, offset: 1, stride: 2 }, grey, 2);
    const px = (p: number) => Array.from(rgba.slice(p * 4, p * 4 + 4));
    expect(px(0)[0]).toBeGreaterThan(200);
    expect(px(0)[2]).toBeLessThan(120);
    expect(px(1)[2]).toBeGreaterThan(200);
    expect(px(1)[0]).toBeLessThan(60);
    // value 0 over a dark image pixel: light grey (faint copy), not white, not dark
    expect(px(2)[0]).toBe(px(2)[1]);
    expect(px(2)[0]).toBeGreaterThan(180);
    expect(px(2)[0]).toBeLessThan(255);
  });
});

describe("overlayRGBA fast path", () => {
  it("gives exactly what the general colour-map loop gives (NaN, inf, out of range, 0)", () => {
    const n = 400;
    const data = new Float32Array(n).map((_, i) => Math.sin(i * 1.7) * 3);
    data[5] = NaN;
    data[6] = Infinity;
    data[7] = -Infinity;
    data[8] = 0;
    const grey = new Float32Array(n).map((_, i) => (i % 13) / 12);
    const fast = overlayRGBA({ data, offset: 0, stride: 1 }, grey, 2.5);
    const general = overlayRGBA({ data, offset: 0, stride: 1 }, grey, 2.5, 0.18, (t) => diverging(t));
    expect(Array.from(fast)).toEqual(Array.from(general));
  });
});

describe("underlay", () => {
  it("inverts a dark image for the underlay, keeps a light one", () => {
    const dark = underlay({ data: new Float32Array([0, 0, 0, 1]), offset: 0, h: 2, w: 2, c: 1 });
    expect(Array.from(dark)).toEqual([1, 1, 1, 0]);
    const light = underlay({ data: new Float32Array([1, 1, 1, 0]), offset: 0, h: 2, w: 2, c: 1 });
    expect(Array.from(light)).toEqual([1, 1, 1, 0]);
  });
});
