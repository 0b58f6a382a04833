// Decode arrays sent from Python as {view|buffer: DataView, dtype, shape} (binary buffers).

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;

export interface NDArray {
  data: NumericArray;
  shape: number[];
  dtype: string;
}

/** What Python sends: the bytes (a DataView in the browser) plus a small JSON header. */
export interface SerializedArray {
  view?: DataView | ArrayBuffer | ArrayBufferView | null;
  buffer?: DataView | ArrayBuffer | ArrayBufferView | null;
  dtype: string;
  shape: number[];
}

type Ctor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericArray;
  new (length: number): NumericArray;
  BYTES_PER_ELEMENT: number;
};

const CTORS: Record<string, Ctor> = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
};

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Typed array over the bytes of `obj` (no copy when aligned), respecting the byteOffset of
 * the DataView: a view into a larger message buffer starts part-way through it.
 * Returns null for null/undefined input. Throws on an unknown dtype or a size mismatch.
 */
export function decodeArray(obj: SerializedArray | null | undefined): NDArray | null {
  if (obj == null) return null;
  const src = obj.view ?? obj.buffer;
  if (src == null) return null;
  const ctor = CTORS[obj.dtype];
  if (!ctor) throw new Error(`unsupported dtype ${JSON.stringify(obj.dtype)}`);
  const shape = (obj.shape ?? []).map(Number);
  const n = product(shape);
  let buffer: ArrayBufferLike;
  let offset: number;
  let byteLength: number;
  if (src instanceof ArrayBuffer) {
    buffer = src;
    offset = 0;
    byteLength = src.byteLength;
  } else {
    buffer = src.buffer;
    offset = src.byteOffset;
    byteLength = src.byteLength;
  }
  const size = ctor.BYTES_PER_ELEMENT;
  if (byteLength !== n * size) {
    throw new Error(
      `array of shape [${shape.join(", ")}] and dtype ${obj.dtype} needs ${n * size} bytes, got ${byteLength}`,
    );
  }
  let data: NumericArray;
  if (offset % size === 0) {
    data = new ctor(buffer, offset, n);
  } else {
    // unaligned view: copy the bytes into a fresh buffer
    const bytes = new Uint8Array(buffer, offset, byteLength).slice();
    data = new ctor(bytes.buffer, 0, n);
  }
  return { data, shape, dtype: obj.dtype };
}
