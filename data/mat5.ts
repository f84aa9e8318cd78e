/**
 * A small strict reader of MATLAB level-5 MAT-files (the format of the ImageNet devkit's `meta.mat`): the 128-byte
 * header, then data elements, each an `miMATRIX` or an `miCOMPRESSED` (zlib, inflated with `node:zlib`) holding one.
 * It reads what such files hold and nothing more: struct and cell arrays, char arrays (`miUTF8`/`miUINT16`/`miUTF16`
 * data) and real numeric arrays of any class (whose data MATLAB may store in a smaller integer type), both byte
 * orders. Sparse, object, complex and function-handle arrays are refused by name. Every error names the file and the
 * byte offset (inside inflated data: the offset there and the offset of the compressed element).
 *
 * The npm registry's one MAT-file reader, `mat-for-js` (one release, GPL-3.0), could not be taken: this project is
 * not GPL.
 * @module
 */
import { inflateSync } from "node:zlib";

/** A real numeric (or logical) array: values in MATLAB's column-major order. */
export interface MatNumeric {
  kind: "numeric";
  /** MATLAB's class name, e.g. "double", "uint8". */
  class: string;
  dims: number[];
  data: Float64Array;
}

/** A char array; a row vector (or empty) reads as one string. */
export interface MatChar {
  kind: "char";
  dims: number[];
  /** One string per row. */
  rows: string[];
}

/** A struct array: one record of field values per element, column-major. */
export interface MatStruct {
  kind: "struct";
  dims: number[];
  fields: string[];
  elements: Record<string, MatValue>[];
}

/** A cell array: one value per element, column-major. */
export interface MatCell {
  kind: "cell";
  dims: number[];
  elements: MatValue[];
}

/** Any value {@linkcode readMat5} returns. */
export type MatValue = MatNumeric | MatChar | MatStruct | MatCell;

// Data types (the tag of a data element).
const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
} as const;

/** Array classes (the low byte of an array's flags). */
const MX_CLASSES: Record<number, string> = {
  1: "cell",
  2: "struct",
  3: "object",
  4: "char",
  5: "sparse",
  6: "double",
  7: "single",
  8: "int8",
  9: "uint8",
  10: "int16",
  11: "uint16",
  12: "int32",
  13: "uint32",
  14: "int64",
  15: "uint64",
};

const NUMERIC_BYTES: Record<number, number> = {
  [MI.INT8]: 1,
  [MI.UINT8]: 1,
  [MI.INT16]: 2,
  [MI.UINT16]: 2,
  [MI.INT32]: 4,
  [MI.UINT32]: 4,
  [MI.SINGLE]: 4,
  [MI.DOUBLE]: 8,
  [MI.INT64]: 8,
  [MI.UINT64]: 8,
};

/** A data element: its type, its data's bytes, and where they start (for errors). */
interface Element {
  type: number;
  data: Uint8Array;
  at: number;
}

/** Reads elements from one byte range: the file, or the bytes one miCOMPRESSED element inflated to. */
class ElementReader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array, readonly le: boolean, readonly where: (offset: number) => string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(offset: number, message: string): never {
    throw new Error(`${this.where(offset)}: ${message}`);
  }

  /** The element at `offset` and the offset of the next one. */
  element(offset: number): { element: Element; next: number } {
    if (offset + 8 > this.bytes.length) {
      this.fail(offset, `a data element's 8-byte tag is cut short (${this.bytes.length - offset} bytes left)`);
    }
    const first = this.view.getUint32(offset, this.le);
    if (first >>> 16 !== 0) {
      // Small data element: type and size in one word, up to 4 bytes of data in the next.
      const type = first & 0xffff, size = first >>> 16;
      if (size > 4) this.fail(offset, `a small data element claims ${size} bytes (at most 4 fit)`);
      return {
        element: { type, data: this.bytes.subarray(offset + 4, offset + 4 + size), at: offset + 4 },
        next: offset + 8,
      };
    }
    const size = this.view.getUint32(offset + 4, this.le);
    const start = offset + 8;
    if (start + size > this.bytes.length) {
      this.fail(offset, `a data element of type ${first} claims ${size} bytes but ${this.bytes.length - start} remain`);
    }
    // Elements are padded to 8 bytes, except compressed ones (their size is the zlib stream's).
    const padded = first === MI.COMPRESSED ? size : Math.ceil(size / 8) * 8;
    return {
      element: { type: first, data: this.bytes.subarray(start, start + size), at: start },
      next: start + padded,
    };
  }

  /** The data of element `e` as numbers of its own type. */
  numbers(e: Element): Float64Array {
    const width = NUMERIC_BYTES[e.type];
    if (width === undefined) this.fail(e.at, `expected numeric data, found data type ${e.type}`);
    if (e.data.length % width !== 0) {
      this.fail(e.at, `${e.data.length} bytes is not a whole number of ${width}-byte values`);
    }
    const view = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    const n = e.data.length / width;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * width;
      switch (e.type) {
        case MI.INT8:
          out[i] = view.getInt8(o);
          break;
        case MI.UINT8:
          out[i] = view.getUint8(o);
          break;
        case MI.INT16:
          out[i] = view.getInt16(o, this.le);
          break;
        case MI.UINT16:
          out[i] = view.getUint16(o, this.le);
          break;
        case MI.INT32:
          out[i] = view.getInt32(o, this.le);
          break;
        case MI.UINT32:
          out[i] = view.getUint32(o, this.le);
          break;
        case MI.SINGLE:
          out[i] = view.getFloat32(o, this.le);
          break;
        case MI.DOUBLE:
          out[i] = view.getFloat64(o, this.le);
          break;
        case MI.INT64:
          out[i] = Number(view.getBigInt64(o, this.le));
          break;
        case MI.UINT64:
          out[i] = Number(view.getBigUint64(o, this.le));
          break;
      }
    }
    return out;
  }

  /** The sub-element at `offset` inside matrix data `m`, which must exist and have type `type` (if given). */
  sub(m: Element, offset: number, what: string, type?: number): { element: Element; next: number } {
    if (offset >= m.at + m.data.length) this.fail(offset, `the array ends before its ${what}`);
    const r = this.element(offset);
    if (r.element.at + r.element.data.length > m.at + m.data.length) {
      this.fail(offset, `its ${what} runs past the end of the array that holds it`);
    }
    if (type !== undefined && r.element.type !== type) {
      this.fail(offset, `expected the ${what} as data type ${type}, found ${r.element.type}`);
    }
    return r;
  }

  /** Decodes the miMATRIX element `m` (its data lies in this reader's bytes). */
  matrix(m: Element): { name: string; value: MatValue } {
    // An empty miMATRIX (MATLAB writes one for an empty field) is the empty double matrix.
    if (m.data.length === 0) {
      return { name: "", value: { kind: "numeric", class: "double", dims: [0, 0], data: new Float64Array(0) } };
    }
    let o = m.at;
    const flags = this.sub(m, o, "array flags", MI.UINT32);
    if (flags.element.data.length !== 8) {
      this.fail(o, `array flags hold ${flags.element.data.length} bytes, expected 8`);
    }
    const word = this.view.getUint32(flags.element.at, this.le);
    const cls = word & 0xff;
    const className = MX_CLASSES[cls];
    if (className === undefined) this.fail(flags.element.at, `unknown array class ${cls}`);
    if (word & 0x0800) this.fail(flags.element.at, `complex ${className} arrays are not supported`);
    o = flags.next;
    const dimsEl = this.sub(m, o, "dimensions", MI.INT32);
    const dims = Array.from(this.numbers(dimsEl.element));
    if (dims.length < 2 || dims.some((d) => d < 0)) this.fail(o, `invalid dimensions [${dims.join(", ")}]`);
    const count = dims.reduce((a, b) => a * b, 1);
    o = dimsEl.next;
    const nameEl = this.sub(m, o, "array name", MI.INT8);
    const name = new TextDecoder().decode(nameEl.element.data);
    o = nameEl.next;
    const end = m.at + m.data.length;
    switch (className) {
      case "struct": {
        const lenEl = this.sub(m, o, "field name length", MI.INT32);
        const [fieldLength] = this.numbers(lenEl.element);
        if (!(fieldLength > 0)) this.fail(o, `invalid field name length ${fieldLength}`);
        o = lenEl.next;
        const namesEl = this.sub(m, o, "field names", MI.INT8);
        const raw = namesEl.element.data;
        if (raw.length % fieldLength !== 0) {
          this.fail(o, `${raw.length} bytes of field names is not a multiple of the name length ${fieldLength}`);
        }
        const fields: string[] = [];
        for (let i = 0; i < raw.length; i += fieldLength) {
          const slot = raw.subarray(i, i + fieldLength);
          const zero = slot.indexOf(0);
          fields.push(new TextDecoder().decode(zero < 0 ? slot : slot.subarray(0, zero)));
        }
        o = namesEl.next;
        const elements: Record<string, MatValue>[] = [];
        for (let i = 0; i < count; i++) {
          const record: Record<string, MatValue> = {};
          for (const field of fields) {
            const f = this.sub(m, o, `field "${field}" of element ${i + 1}`, MI.MATRIX);
            record[field] = this.matrix(f.element).value;
            o = f.next;
          }
          elements.push(record);
        }
        return { name, value: { kind: "struct", dims, fields, elements } };
      }
      case "cell": {
        const elements: MatValue[] = [];
        for (let i = 0; i < count; i++) {
          const c = this.sub(m, o, `cell ${i + 1}`, MI.MATRIX);
          elements.push(this.matrix(c.element).value);
          o = c.next;
        }
        return { name, value: { kind: "cell", dims, elements } };
      }
      case "char": {
        if (count === 0) {
          return { name, value: { kind: "char", dims, rows: dims[0] === 0 ? [] : Array(dims[0]).fill("") } };
        }
        if (dims.length !== 2) this.fail(m.at, `a char array of ${dims.length} dimensions is not supported`);
        const dataEl = this.sub(m, o, "characters");
        const codes = this.charCodes(dataEl.element);
        if (codes.length !== count) {
          this.fail(dataEl.element.at, `a [${dims.join(", ")}] char array holds ${codes.length} characters`);
        }
        const [rows, cols] = dims;
        const out: string[] = [];
        for (let r = 0; r < rows; r++) {
          let s = "";
          for (let c = 0; c < cols; c++) s += String.fromCharCode(codes[c * rows + r]); // column-major
          out.push(s);
        }
        return { name, value: { kind: "char", dims, rows: out } };
      }
      case "object":
      case "sparse":
        this.fail(flags.element.at, `${className} arrays are not supported`);
        break;
      default: {
        if (count === 0 && o >= end) {
          return { name, value: { kind: "numeric", class: className, dims, data: new Float64Array(0) } };
        }
        const dataEl = this.sub(m, o, "real part");
        const data = this.numbers(dataEl.element);
        if (data.length !== count) {
          this.fail(dataEl.element.at, `a [${dims.join(", ")}] ${className} array holds ${data.length} values`);
        }
        return { name, value: { kind: "numeric", class: className, dims, data } };
      }
    }
    throw new Error("unreachable");
  }

  charCodes(e: Element): number[] {
    switch (e.type) {
      case MI.UTF8:
      case MI.UINT8:
      case MI.INT8: {
        const text = new TextDecoder("utf-8", { fatal: true }).decode(e.data);
        return Array.from(text, (ch) => ch.charCodeAt(0));
      }
      case MI.UINT16:
      case MI.UTF16:
        return Array.from(this.numbers({ ...e, type: MI.UINT16 }));
      default:
        this.fail(e.at, `expected character data (miUTF8, miUINT16 or miUTF16), found data type ${e.type}`);
    }
  }
}

/**
 * The named variables of the level-5 MAT-file `bytes` (read from `path`, which errors name).
 * @throws {Error} naming `path` and the byte offset of the first thing that is not what the format says, or that this
 * reader does not support.
 */
export function readMat5(bytes: Uint8Array, path: string): Map<string, MatValue> {
  if (bytes.length < 128) throw new Error(`${path}: ${bytes.length} bytes, too short for a MAT-file's 128-byte header`);
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 116));
  const order = String.fromCharCode(bytes[126], bytes[127]);
  if (!head.startsWith("MATLAB 5.0 MAT-file") || (order !== "IM" && order !== "MI")) {
    throw new Error(
      `${path}: not a MATLAB level-5 MAT-file (expected "MATLAB 5.0 MAT-file" at byte 0 and "IM" or "MI" at byte 126, ` +
        `found ${JSON.stringify(head.slice(0, 19))} and ${JSON.stringify(order)})`,
    );
  }
  const le = order === "IM";
  const file = new ElementReader(bytes, le, (o) => `${path}: at byte ${o}`);
  const variables = new Map<string, MatValue>();
  let offset = 128;
  while (offset < bytes.length) {
    const { element, next } = file.element(offset);
    let reader = file, matrix = element;
    if (element.type === MI.COMPRESSED) {
      let inflated: Uint8Array = new Uint8Array(0);
      try {
        inflated = new Uint8Array(inflateSync(element.data));
      } catch (e) {
        file.fail(offset, `compressed element does not inflate (${(e as Error).message})`);
      }
      const at = offset;
      reader = new ElementReader(inflated, le, (o) => `${path}: at byte ${o} of the data inflated from byte ${at}`);
      matrix = reader.element(0).element;
    }
    if (matrix.type !== MI.MATRIX) {
      reader.fail(matrix.at - 8, `expected a matrix (type 14), found data type ${matrix.type}`);
    }
    const { name, value } = reader.matrix(matrix);
    variables.set(name, value);
    offset = next;
  }
  return variables;
}
