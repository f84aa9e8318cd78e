/**
 * The safetensors file format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N,
 * N bytes of UTF-8 JSON `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } }`, then
 * the data buffer, tensors packed back to back in C order, little-endian.
 *
 * Reading validates like the reference Rust crate (`SafeTensors::read_metadata` + `Metadata::validate`), with one
 * distinct {@linkcode SafetensorsError} code per failure, so a damaged file is rejected before any tensor is used.
 * Beyond the reference it also rejects duplicate JSON keys (serde keeps the last one silently).
 *
 * Element types. Written: F32 and I64 only (what a {@linkcode StateDict} holds). Read:
 * - F32, I64: as they are (aliasing the input bytes when aligned, copied otherwise);
 * - F16, BF16 (exact) and F64 (rounded to nearest): converted to F32, so half-precision or double exports load;
 * - I8, I16, I32, U8, U16, U32: widened to I64 (exact);
 * - BOOL, U64, C64 and the 4/6/8-bit float types: valid safetensors but rejected with code `UnsupportedDtype`: a
 *   ResNet state dict never holds them and no conversion to F32/I64 is both exact and meaningful.
 * @module
 */
import { atomicWriteFile } from "./atomic_write.ts";
import { HOST_LITTLE_ENDIAN, type HostTensor, type StateDict } from "./host_tensor.ts";
import { numElements } from "../kernels/num_elements.ts";

/** Largest header the reference implementation accepts (bytes). */
export const MAX_HEADER_SIZE = 100_000_000;

/** Name of the header entry that holds free-form string metadata. */
export const METADATA_KEY = "__metadata__";

/** Why a safetensors buffer was rejected; names follow the reference crate's `SafeTensorError` where one exists. */
export type SafetensorsErrorCode =
  | "HeaderTooSmall"
  | "HeaderTooLarge"
  | "InvalidHeaderLength"
  | "InvalidHeader"
  | "InvalidHeaderStart"
  | "InvalidHeaderDeserialization"
  | "DuplicateKey"
  | "InvalidMetadata"
  | "InvalidTensorEntry"
  | "UnknownDtype"
  | "InvalidShape"
  | "InvalidDataOffsets"
  | "InvalidOffset"
  | "ValidationOverflow"
  | "MisalignedSlice"
  | "TensorInvalidInfo"
  | "MetadataIncompleteBuffer"
  | "UnsupportedDtype"
  | "InvalidInput";

/** A safetensors encoding or decoding failure; `code` tells which check failed, the message says where and why. */
export class SafetensorsError extends Error {
  /** Which check failed. */
  readonly code: SafetensorsErrorCode;
  /** Builds the error; `message` already names the source, the tensor and the offending values. */
  constructor(code: SafetensorsErrorCode, message: string) {
    super(message);
    this.name = "SafetensorsError";
    this.code = code;
  }
}

/** A decoded safetensors file: tensors in header order and the `__metadata__` strings. */
export interface SafetensorsContents {
  /** Tensors in the order the header lists them (JSON key order; integer-like names come first, as in JS objects). */
  tensors: StateDict;
  /** The `__metadata__` map (empty when the file has none). */
  metadata: Record<string, string>;
}

/** Bits per element of every dtype the format defines (sub-byte float types included, as in the reference). */
const DTYPE_BITS: Record<string, number> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  F64: 64,
  I64: 64,
  U64: 64,
  C64: 64,
};

// Typed arrays use the host's byte order and the format is little-endian; every host Deno ships for is
// little-endian, so rather than carry an untested byte-swapping path, refuse loudly on any other.
/**
 * Serialises `tensors` (F32 and I64) and optional string `metadata` to safetensors bytes. The header lists the
 * tensors in the Map's order; the data holds the 8-byte dtypes first, then the 4-byte ones, so that every tensor is
 * aligned to its element size as with the reference writer (which sorts by alignment, then name); the header is
 * padded with spaces to a multiple of 8 bytes as the reference writer does, so the data buffer starts 8-aligned.
 * `__metadata__` is omitted when `metadata` is absent or empty. Bit patterns (NaN payloads, -0, subnormals) are
 * copied byte for byte.
 */
export function encodeSafetensors(tensors: StateDict, metadata?: Record<string, string>): Uint8Array {
  assertLittleEndianHost();
  const entries: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") {
        throw new SafetensorsError(
          "InvalidInput",
          `cannot encode safetensors: metadata "${key}" must be a string, got ${typeof value}`,
        );
      }
    }
    entries.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  // Data widest dtype first (a stable sort), so I64 scalars (num_batches_tracked) never sit at 4 mod 8; the header
  // keeps the Map's order, which is the order decodeSafetensors returns.
  for (const [name, tensor] of tensors) checkEncodable(name, tensor);
  const ordered = [...tensors].sort(([, a], [, b]) => b.data.BYTES_PER_ELEMENT - a.data.BYTES_PER_ELEMENT);
  const payloads: Uint8Array[] = [];
  const offsets = new Map<string, [number, number]>();
  let offset = 0;
  for (const [name, tensor] of ordered) {
    const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    offsets.set(name, [offset, offset + bytes.length]);
    payloads.push(bytes);
    offset += bytes.length;
  }
  for (const [name, tensor] of tensors) {
    const info = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: offsets.get(name) };
    // Built entry by entry, not with one JSON.stringify of an object: JS objects move integer-like keys first.
    entries.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
  }
  let header = new TextEncoder().encode(`{${entries.join(",")}}`);
  const padded = Math.ceil(header.length / 8) * 8;
  if (padded !== header.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(header);
    header = withSpaces;
  }
  if (header.length > MAX_HEADER_SIZE) {
    throw new SafetensorsError(
      "HeaderTooLarge",
      `cannot encode safetensors: header would be ${header.length} bytes, over the ${MAX_HEADER_SIZE} readers accept`,
    );
  }
  const out = new Uint8Array(8 + header.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  let at = 8 + header.length;
  for (const bytes of payloads) {
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/**
 * Parses and validates safetensors bytes. Every check of the reference implementation is applied (header length
 * bounds, UTF-8, JSON object, known dtypes, shape and offset types, byte length = elements x dtype size, offsets
 * contiguous from 0 in offset order, last offset = buffer length), plus duplicate keys and metadata value types.
 * Throws a {@linkcode SafetensorsError} whose message names `source`, the tensor and the offending values; nothing
 * is returned unless the whole file is valid. F32/I64 tensors may alias `bytes` (when suitably aligned), so do not
 * modify `bytes` afterwards.
 */
export function decodeSafetensors(bytes: Uint8Array, source = "<memory>"): SafetensorsContents {
  assertLittleEndianHost();
  const fail = (code: SafetensorsErrorCode, what: string): never => {
    throw new SafetensorsError(code, `${source}: ${what}`);
  };
  // A file that fails these first checks is most likely no safetensors file at all (a text file, an image, a
  // PyTorch .pt zip): say so first, then the detail.
  const notOne = "not a safetensors file (an 8-byte little-endian header length, then a JSON header): ";
  if (bytes.length < 8) {
    fail("HeaderTooSmall", `${notOne}file is ${bytes.length} bytes, too short for the 8-byte header length`);
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    fail("HeaderTooLarge", `${notOne}header length ${n} exceeds the limit of ${MAX_HEADER_SIZE} bytes`);
  }
  const headerLength = Number(n);
  if (8 + headerLength > bytes.length) {
    fail(
      "InvalidHeaderLength",
      `${notOne}header length ${headerLength} runs past the end of the file (${bytes.length - 8} bytes follow the ` +
        "length)",
    );
  }
  let text = "";
  try {
    // ignoreBOM keeps a byte-order mark in the text, so it fails the '{' check below as it does in the reference.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    fail("InvalidHeader", `header (bytes 8 to ${8 + headerLength}) is not valid UTF-8`);
  }
  if (!text.startsWith("{")) {
    fail(
      "InvalidHeaderStart",
      `header is not a JSON object: it must begin with '{' but begins with ${JSON.stringify(text.slice(0, 16))}`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail("InvalidHeaderDeserialization", `header is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("InvalidHeaderStart", `header is not a JSON object`);
  }
  const { duplicate, topKeys } = scanKeys(text);
  if (duplicate !== null) {
    fail(
      "DuplicateKey",
      duplicate.depth === 1
        ? `tensor name "${duplicate.key}" appears more than once in the header`
        : `key "${duplicate.key}" appears more than once inside ${duplicate.parent} in the header`,
    );
  }

  const metadata: Record<string, string> = {};
  const infos: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  // In the header's text order (Object.entries would move integer-like names first).
  for (const name of topKeys) {
    const entry = (header as Record<string, unknown>)[name];
    if (name === METADATA_KEY) {
      if (entry === null) continue; // serde reads `null` as "no metadata"
      if (typeof entry !== "object" || Array.isArray(entry)) {
        fail("InvalidMetadata", `"${METADATA_KEY}" must be an object of strings, got ${JSON.stringify(entry)}`);
      }
      for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof value !== "string") {
          fail(
            "InvalidMetadata",
            `"${METADATA_KEY}" value of "${key}" must be a string, got ${typeOf(value)} ${JSON.stringify(value)}`,
          );
        }
        metadata[key] = value as string;
      }
      continue;
    }
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      fail(
        "InvalidTensorEntry",
        `tensor "${name}": entry must be an object {dtype, shape, data_offsets}, got ${JSON.stringify(entry)}`,
      );
    }
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BITS)) {
      fail(
        "UnknownDtype",
        `tensor "${name}": unknown dtype ${JSON.stringify(dtype)} (expected one of ${
          Object.keys(DTYPE_BITS).join(", ")
        })`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(
        "InvalidShape",
        `tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`,
      );
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      fail(
        "InvalidDataOffsets",
        `tensor "${name}": data_offsets must be [begin, end] with non-negative integers, got ${
          JSON.stringify(offsets)
        }`,
      );
    }
    const [begin, end] = offsets as number[];
    infos.push({ name, dtype: dtype as string, shape: shape as number[], begin, end });
  }

  // The reference sorts by (begin, end) before validating; a stable sort keeps header order among equal offsets.
  const byOffset = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  let previous: string | null = null;
  for (const info of byOffset) {
    if (info.begin !== expectedBegin || info.end < info.begin) {
      const after = previous === null ? "the first tensor must begin at 0" : `"${previous}" ends at ${expectedBegin}`;
      const problem = info.end < info.begin
        ? "ends before it begins"
        : info.begin < expectedBegin
        ? "overlaps the previous tensor"
        : "leaves a gap after the previous tensor";
      fail("InvalidOffset", `tensor "${info.name}": data_offsets [${info.begin}, ${info.end}] ${problem}; ${after}`);
    }
    expectedBegin = info.end;
    previous = info.name;
    const elements = numElements(info.shape);
    const bits = elements * DTYPE_BITS[info.dtype];
    if (!Number.isSafeInteger(bits)) {
      fail(
        "ValidationOverflow",
        `tensor "${info.name}": shape ${JSON.stringify(info.shape)} of ${info.dtype} overflows (more than 2^53 bits)`,
      );
    }
    if (bits % 8 !== 0) {
      fail(
        "MisalignedSlice",
        `tensor "${info.name}": ${elements} elements of ${info.dtype} are ${bits} bits, not a whole number of bytes`,
      );
    }
    if (info.end - info.begin !== bits / 8) {
      fail(
        "TensorInvalidInfo",
        `tensor "${info.name}": data_offsets [${info.begin}, ${info.end}] hold ${info.end - info.begin} bytes but ` +
          `dtype ${info.dtype} with shape ${JSON.stringify(info.shape)} needs ${bits / 8}`,
      );
    }
  }
  const dataStart = 8 + headerLength;
  const bufferLength = bytes.length - dataStart;
  if (expectedBegin !== bufferLength) {
    fail(
      "MetadataIncompleteBuffer",
      expectedBegin < bufferLength
        ? `${bufferLength - expectedBegin} trailing bytes: the tensors end at data offset ${expectedBegin} but the ` +
          `data buffer is ${bufferLength} bytes`
        : `file is truncated: the tensors need ${expectedBegin} bytes of data but only ${bufferLength} follow the header`,
    );
  }
  // Convert only once everything is known to be valid, so no caller ever sees part of a bad file.
  for (const info of infos) {
    if (!(info.dtype in CONVERTERS)) {
      fail(
        "UnsupportedDtype",
        `tensor "${info.name}": dtype ${info.dtype} is valid safetensors but not supported here ` +
          `(readable: ${Object.keys(CONVERTERS).join(", ")})`,
      );
    }
  }
  const tensors: StateDict = new Map();
  for (const info of infos) {
    const raw = bytes.subarray(dataStart + info.begin, dataStart + info.end);
    tensors.set(info.name, CONVERTERS[info.dtype](raw, info.shape));
  }
  return { tensors, metadata };
}

/** Reads and validates a safetensors file (see {@linkcode decodeSafetensors}); errors name `path`. */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  return decodeSafetensors(await Deno.readFile(path), path);
}

/** Writes `tensors` and `metadata` to `path` atomically (temporary file, fsync, rename, folder fsync). */
export async function writeSafetensors(
  path: string,
  tensors: StateDict,
  metadata?: Record<string, string>,
): Promise<void> {
  await atomicWriteFile(path, encodeSafetensors(tensors, metadata));
}

function checkEncodable(name: string, tensor: HostTensor): void {
  const bad = (what: string): never => {
    throw new SafetensorsError("InvalidInput", `cannot encode safetensors: tensor "${name}": ${what}`);
  };
  if (name === METADATA_KEY) bad(`the name is reserved for metadata`);
  if (!Array.isArray(tensor.shape) || !tensor.shape.every(isCount)) {
    bad(`shape must be non-negative integers, got ${JSON.stringify(tensor.shape)}`);
  }
  if (
    tensor.dtype === "F32"
      ? !(tensor.data instanceof Float32Array)
      : tensor.dtype === "I64"
      ? !(tensor.data instanceof BigInt64Array)
      : true
  ) {
    bad(
      `dtype ${tensor.dtype} does not match its ${tensor.data?.constructor?.name} data (F32 -> Float32Array, I64 -> BigInt64Array)`,
    );
  }
  if (tensor.data.length !== numElements(tensor.shape)) {
    bad(
      `shape ${JSON.stringify(tensor.shape)} has ${
        numElements(tensor.shape)
      } elements but data has ${tensor.data.length}`,
    );
  }
}

/** Turns validated little-endian bytes of one dtype into a host tensor. */
type Converter = (raw: Uint8Array, shape: number[]) => HostTensor;

const CONVERTERS: Record<string, Converter> = {
  F32: (raw, shape) => ({ dtype: "F32", shape, data: view(raw, Float32Array) }),
  I64: (raw, shape) => ({ dtype: "I64", shape, data: view(raw, BigInt64Array) }),
  F64: (raw, shape) => ({ dtype: "F32", shape, data: Float32Array.from(view(raw, Float64Array)) }),
  // bfloat16 is the top half of a float32: shifting the bits is exact, NaN payloads included.
  BF16: (raw, shape) => {
    const out = new Uint32Array(raw.length / 2);
    const dv = dataView(raw);
    for (let i = 0; i < out.length; i++) out[i] = dv.getUint16(2 * i, true) << 16;
    return { dtype: "F32", shape, data: new Float32Array(out.buffer) };
  },
  F16: (raw, shape) => {
    const out = new Float32Array(raw.length / 2);
    const dv = dataView(raw);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat16(2 * i, true);
    return { dtype: "F32", shape, data: out };
  },
  I32: widen(Int32Array),
  I16: widen(Int16Array),
  I8: widen(Int8Array),
  U32: widen(Uint32Array),
  U16: widen(Uint16Array),
  U8: widen(Uint8Array),
};

type IntArray = Int32Array | Int16Array | Int8Array | Uint32Array | Uint16Array | Uint8Array;

function widen(
  type: { new (buffer: ArrayBuffer, offset: number, length: number): IntArray; BYTES_PER_ELEMENT: number },
) {
  return (raw: Uint8Array, shape: number[]): HostTensor => ({
    dtype: "I64",
    shape,
    data: BigInt64Array.from(view(raw, type), (v) => BigInt(v)),
  });
}

/** A typed view on `raw`: aliases it when its offset is aligned for the element type, else copies it first. */
function view<T>(
  raw: Uint8Array,
  type: { new (buffer: ArrayBuffer, offset: number, length: number): T; BYTES_PER_ELEMENT: number },
): T {
  const size = type.BYTES_PER_ELEMENT;
  const aligned = raw.byteOffset % size === 0 ? raw : raw.slice();
  return new type(aligned.buffer as ArrayBuffer, aligned.byteOffset, aligned.length / size);
}

function dataView(raw: Uint8Array): DataView {
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** A non-negative safe integer (a size, an offset, a count). */
export function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function typeOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function assertLittleEndianHost(): void {
  if (!HOST_LITTLE_ENDIAN) {
    throw new SafetensorsError("InvalidInput", "safetensors support needs a little-endian host");
  }
}

/**
 * Scans `text` (valid JSON) for the first key that appears twice in one object, with the key of the object holding
 * it and that object's nesting depth (1 = the header itself), since JSON.parse keeps the last duplicate silently;
 * and lists the header's own keys in text order.
 */
function scanKeys(
  text: string,
): { duplicate: { key: string; parent: string; depth: number } | null; topKeys: string[] } {
  const topKeys: string[] = [];
  // One frame per open container: the keys seen (objects only), whether the next string is a key, and its own key.
  const stack: { keys: Set<string> | null; expectKey: boolean; name: string | null }[] = [];
  let lastKey: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (c === "{" || c === "[") {
      stack.push({ keys: c === "{" ? new Set() : null, expectKey: c === "{", name: lastKey });
      lastKey = null;
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      if (top?.keys) top.expectKey = true;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) {
          const parent = top.name === null ? "an unnamed object" : JSON.stringify(top.name);
          return { duplicate: { key, parent, depth: stack.length }, topKeys };
        }
        if (stack.length === 1) topKeys.push(key);
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
      i = j;
    }
  }
  return { duplicate: null, topKeys };
}
