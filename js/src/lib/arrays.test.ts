import { describe, expect, it } from "vitest";
import { decodeArray, product } from "./arrays";

function dataViewOf(values: number[], ctor: Float32ArrayConstructor | Float64ArrayConstructor, pad = 0): DataView {
  const bytes = ctor.BYTES_PER_ELEMENT;
  const buf = new ArrayBuffer(pad + values.length * bytes + 8);
  new ctor(buf, pad, values.length).set(values);
  return new DataView(buf, pad, values.length * bytes);
}

describe("decodeArray", () => {
  it("decodes float32 with its shape", () => {
    const a = decodeArray({ view: dataViewOf([1, 2, 3, 4, 5, 6], Float32Array), dtype: "float32", shape: [2, 3] });
    expect(a?.shape).toEqual([2, 3]);
    expect(a?.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a!.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("respects a non-zero byteOffset of the DataView", () => {
    // the message buffer holds other bytes before the array: 16 bytes of junk
    const dv = dataViewOf([0.5, -1.5, 2.25], Float32Array, 16);
    new Uint8Array(dv.buffer, 0, 16).fill(255);
    expect(dv.byteOffset).toBe(16);
    const a = decodeArray({ view: dv, dtype: "float32", shape: [3] })!;
    expect(Array.from(a.data)).toEqual([0.5, -1.5, 2.25]);
    expect(a.data.byteOffset).toBe(16);
  });

  it("copies an unaligned view instead of failing", () => {
    const buf = new ArrayBuffer(3 + 8);
    const tmp = new Float32Array([7, -8]);
    new Uint8Array(buf, 3, 8).set(new Uint8Array(tmp.buffer));
    const a = decodeArray({ view: new DataView(buf, 3, 8), dtype: "float32", shape: [2] })!;
    expect(Array.from(a.data)).toEqual([7, -8]);
  });

  it("accepts `buffer`, ArrayBuffer and other dtypes", () => {
    const f64 = dataViewOf([1.5, 2.5], Float64Array);
    expect(Array.from(decodeArray({ buffer: f64, dtype: "float64", shape: [2] })!.data)).toEqual([1.5, 2.5]);
    const u8 = new Uint8Array([1, 2, 250]).buffer;
    const a = decodeArray({ view: u8, dtype: "uint8", shape: [3] })!;
    expect(a.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(a.data)).toEqual([1, 2, 250]);
  });

  it("returns null for null input and throws on bad headers", () => {
    expect(decodeArray(null)).toBeNull();
    expect(decodeArray({ view: null, dtype: "float32", shape: [0] })).toBeNull();
    const dv = dataViewOf([1, 2, 3], Float32Array);
    expect(() => decodeArray({ view: dv, dtype: "float32", shape: [2, 2] })).toThrow(/needs 16 bytes, got 12/);
    expect(() => decodeArray({ view: dv, dtype: "complex64", shape: [3] })).toThrow(/unsupported dtype/);
  });

  it("product of a shape", () => {
    expect(product([2, 3, 4])).toBe(24);
    expect(product([])).toBe(1);
  });
});
