/**
 * NumPy's `.npy` format, version 1.0 (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html), for
 * float32, int32 and uint8 (images) arrays in C order: the bytes `numpy.save` writes, so `numpy.load` reads them back.
 * @module
 */
import { atomicWriteFile } from "./atomic_write.ts";
import { HOST_LITTLE_ENDIAN } from "./host_tensor.ts";
import { numElements } from "../kernels/num_elements.ts";

/** The arrays this module reads and writes. */
export type NpyData = Float32Array | Int32Array | Uint8Array;

/** The dtypes of {@linkcode NpyData}, as NumPy writes them. */
export type NpyDescr = "<f4" | "<i4" | "|u1";

/** Bytes per element of each dtype. */
const ITEM_SIZE: Record<NpyDescr, number> = { "<f4": 4, "<i4": 4, "|u1": 1 };

/** A decoded `.npy` array. */
export interface NpyArray {
  /** Elements in C (row-major) order. */
  data: NpyData;
  /** The array's shape (`[]` for a scalar). */
  shape: number[];
}

/** "\x93NUMPY". */
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
/** numpy.lib.format.ARRAY_ALIGN: the header (magic to newline) is padded to a multiple of this. */
const ARRAY_ALIGN = 64;
/** numpy.lib.format.GROWTH_AXIS_MAX_DIGITS: NumPy leaves room to grow the first axis in place. */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** Magic (6) + version (2) + header length (2, little-endian u16 in version 1.0). */
const PREFIX_LENGTH = 10;

// Typed arrays use the host's byte order and `<f4`/`<i4` are little-endian (true of every host Deno ships for).
/**
 * Encodes `data` with `shape` exactly as `numpy.save` does for a C-ordered `<f4`, `<i4` or `|u1` array: the header of
 * {@linkcode npyHeader}, then the elements, little-endian, in C order.
 */
export function encodeNpy(data: NpyData, shape: number[]): Uint8Array {
  if (!HOST_LITTLE_ENDIAN) throw new Error("writing .npy needs a little-endian host");
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`cannot encode .npy: shape must be non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (data.length !== numElements(shape)) {
    throw new Error(
      `cannot encode .npy: shape ${JSON.stringify(shape)} has ${
        numElements(shape)
      } elements but data has ${data.length}`,
    );
  }
  const descr = data instanceof Float32Array
    ? "<f4"
    : data instanceof Int32Array
    ? "<i4"
    : data instanceof Uint8Array
    ? "|u1"
    : null;
  if (descr === null) throw new Error("cannot encode .npy: data must be a Float32Array, Int32Array or Uint8Array");
  const header = npyHeader(descr, shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

/**
 * The header `numpy.save` writes for a C-ordered array of `descr` with `shape`, as bytes: magic, version 1.0, the
 * little-endian u16 header length, the dict `{'descr': ..., 'fortran_order': False, 'shape': (...), }`, NumPy's
 * growth spaces (room to rewrite a longer first dimension in place), space padding and a newline, so that the data
 * starts at a multiple of 64 bytes.
 */
export function npyHeader(descr: NpyDescr, shape: readonly number[]): Uint8Array {
  // Python's repr of a tuple: (), (5,), (2, 3).
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`;
  if (shape.length > 0) dict += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  // As numpy's _wrap_header: pad so that prefix + dict + padding + "\n" is a multiple of 64 (padding 1 to 64 bytes).
  const padding = ARRAY_ALIGN - ((PREFIX_LENGTH + dict.length + 1) % ARRAY_ALIGN);
  const text = dict + " ".repeat(padding) + "\n";
  if (text.length > 0xffff) throw new Error(`cannot encode .npy: shape ${tuple} needs a version 2.0 header`);
  const out = new Uint8Array(PREFIX_LENGTH + text.length);
  out.set(MAGIC, 0);
  out.set([1, 0], 6);
  new DataView(out.buffer).setUint16(8, text.length, true);
  // The dict is ASCII (digits, quotes, letters), so one char = one byte.
  for (let i = 0; i < text.length; i++) out[PREFIX_LENGTH + i] = text.charCodeAt(i);
  return out;
}

/**
 * Decodes a version 1.0/2.0 `.npy` holding a C-ordered `<f4`, `<i4` or `|u1` array (what {@linkcode encodeNpy} and
 * `numpy.save` write for those dtypes). Anything else is rejected with an error naming `source` and the field.
 */
export function decodeNpy(bytes: Uint8Array, source = "<memory>"): NpyArray {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (bytes.length < PREFIX_LENGTH || !MAGIC.every((b, i) => bytes[i] === b)) {
    fail(`not a .npy file: it does not start with the magic string \\x93NUMPY`);
  }
  const [major, minor] = [bytes[6], bytes[7]];
  if ((major !== 1 && major !== 2) || minor !== 0) fail(`unsupported .npy version ${major}.${minor}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthSize = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const dataStart = 8 + lengthSize + headerLength;
  if (dataStart > bytes.length) fail(`header length ${headerLength} runs past the end of the file`);
  const header = new TextDecoder("latin1").decode(bytes.subarray(8 + lengthSize, dataStart));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr !== "<f4" && descr !== "<i4" && descr !== "|u1") {
    fail(`unsupported dtype ${JSON.stringify(descr)} (expected '<f4', '<i4' or '|u1')`);
  }
  if (fortran !== "False") fail(`fortran_order must be False, got ${JSON.stringify(fortran)}`);
  if (shapeText === undefined) fail(`header has no 'shape' tuple: ${JSON.stringify(header)}`);
  const parts = shapeText!.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (!parts.every((s) => /^[0-9]+$/.test(s))) fail(`shape (${shapeText}) is not a tuple of non-negative integers`);
  const shape = parts.map(Number);
  const byteLength = numElements(shape) * ITEM_SIZE[descr as NpyDescr];
  if (bytes.length - dataStart !== byteLength) {
    fail(`shape (${shapeText}) needs ${byteLength} data bytes but the file has ${bytes.length - dataStart}`);
  }
  // Copy: the data offset need not be 4-aligned within `bytes`, and the result must not alias the input.
  const raw = bytes.slice(dataStart);
  const data = descr === "<f4" ? new Float32Array(raw.buffer) : descr === "<i4" ? new Int32Array(raw.buffer) : raw;
  return { data, shape };
}

/** Writes `data` with `shape` as a `.npy` file at `path`, atomically. */
export async function writeNpy(path: string, data: NpyData, shape: number[]): Promise<void> {
  await atomicWriteFile(path, encodeNpy(data, shape));
}
