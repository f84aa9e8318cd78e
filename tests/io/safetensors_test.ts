import { assert, assertEquals, assertStrictEquals, rejects, throws } from "../assert.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  MAX_HEADER_SIZE,
  readSafetensors,
  SafetensorsError,
  type SafetensorsErrorCode,
  writeSafetensors,
} from "../../io/safetensors.ts";
import type { HostTensor, StateDict } from "../../io/host_tensor.ts";

const f32 = (shape: number[], values: number[]): HostTensor => ({
  dtype: "F32",
  shape,
  data: new Float32Array(values),
});
const i64 = (shape: number[], values: bigint[]): HostTensor => ({
  dtype: "I64",
  shape,
  data: new BigInt64Array(values),
});
/** An F32 tensor from raw IEEE-754 bit patterns, so NaN payloads are set without going through a JS number. */
const f32Bits = (bits: number[]): HostTensor => ({
  dtype: "F32",
  shape: [bits.length],
  data: new Float32Array(new Uint32Array(bits).buffer),
});
/** The elements of a (present) tensor as a plain array, for assertEquals. */
const values = (t: HostTensor | undefined): (number | bigint)[] => Array.from(t!.data as Iterable<number | bigint>);
const bytesOf = (t: HostTensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/** A file from a header (object -> JSON, string -> as is, unpadded) and a data buffer (or its length, zero-filled). */
function rawFile(header: unknown, data: Uint8Array | number = 0, declaredLength?: bigint): Uint8Array {
  const text = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + body.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(body, 8 + text.length);
  return out;
}

function rejected(bytes: Uint8Array, code: SafetensorsErrorCode, message: RegExp, source = "bad.safetensors") {
  throws(() => decodeSafetensors(bytes, source), (err: unknown) => {
    assert(err instanceof SafetensorsError, `expected a SafetensorsError, got ${err}`);
    assertStrictEquals(err.code, code, `code for ${err.message}`);
    assert(err.message.startsWith(`${source}: `), `message names the source: ${err.message}`);
    assert(message.test(err.message), `message ${JSON.stringify(err.message)} should match ${message}`);
    return true;
  });
}

Deno.test("encodeSafetensors matches the reference crate's own serialisation test vectors", () => {
  const data = [0, 1, 2, 3, 4, 5];
  // safetensors/src/tensor.rs test_serialization: header exactly 64 bytes, no padding needed.
  const a = encodeSafetensors(new Map([["attn.0", f32([1, 2, 3], data)]]));
  assertEquals(
    Array.from(a),
    [
      64,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      ...new TextEncoder().encode(
        '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}',
      ),
      ...new Uint8Array(new Float32Array(data).buffer),
    ],
  );
  // test_serialization_forced_alignement: a 65-byte header padded with 7 spaces to 72.
  const b = encodeSafetensors(new Map([["attn0", f32([1, 1, 2, 3], data)]]));
  assertEquals(Array.from(b.subarray(0, 8)), [72, 0, 0, 0, 0, 0, 0, 0]);
  assertEquals(
    new TextDecoder().decode(b.subarray(8, 80)),
    '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ',
  );
  // test_empty, without and with metadata.
  assertEquals(Array.from(encodeSafetensors(new Map())), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  assertEquals(
    new TextDecoder().decode(encodeSafetensors(new Map(), { framework: "pt" }).subarray(8)),
    '{"__metadata__":{"framework":"pt"}}     ',
  );
});

Deno.test("round trip is bit-exact: NaN payloads, -0, infinities, subnormals, int64 extremes, scalars, empty", () => {
  const tensors: StateDict = new Map([
    // quiet NaN with payload, negative NaN, signalling NaN, -0, +inf, -inf, smallest and largest subnormal, max.
    [
      "special",
      f32Bits([0x7fc00001, 0xffc12345, 0x7f800001, 0x80000000, 0x7f800000, 0xff800000, 1, 0x807fffff, 0x7f7fffff]),
    ],
    ["conv.weight", f32([2, 1, 1, 3], [0.1, -0.2, 0.3, 1e-30, -1e30, 3.5])],
    ["bn.num_batches_tracked", i64([], [-(2n ** 63n)])],
    ["counter", i64([4], [2n ** 63n - 1n, -(2n ** 63n), 0n, -1n])],
    ["empty", f32([0, 3], [])],
    // Integer-like names: JS objects would move them first; the Map order must survive.
    ["10", f32([1], [10])],
    ["2", f32([1], [2])],
  ]);
  const metadata = { epoch: "3", note: 'ünïcödé ✓ "quoted"\n' };
  const decoded = decodeSafetensors(encodeSafetensors(tensors, metadata));
  assertEquals(decoded.metadata, metadata);
  assertEquals([...decoded.tensors.keys()], [...tensors.keys()], "the header keeps the Map order");
  for (const [name, t] of tensors) {
    const got = decoded.tensors.get(name)!;
    assertStrictEquals(got.dtype, t.dtype, name);
    assertEquals(got.shape, t.shape, name);
    assertEquals(Array.from(bytesOf(got)), Array.from(bytesOf(t)), `${name} bytes`);
  }
});

Deno.test("header is space-padded to a multiple of 8 so the data buffer starts 8-aligned", () => {
  for (let n = 1; n <= 9; n++) {
    const bytes = encodeSafetensors(new Map([["x".repeat(n), f32([1], [1])]]));
    const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assertStrictEquals(length % 8, 0, `header for a ${n}-char name`);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + length));
    assert(/^\{.*\} *$/.test(text), text);
    assertStrictEquals(text.trimEnd().length > length - 8, true, "at most 7 spaces");
  }
});

Deno.test("decoding aliases aligned data, copies unaligned data, and converts F16/BF16/F64 and small integers", () => {
  // F32 data at an odd offset inside a larger buffer: must be copied to be readable as a Float32Array.
  const file = encodeSafetensors(new Map([["a", f32([3], [1.5, -2, 3.25])], ["b", i64([1], [7n])]]));
  const shifted = new Uint8Array(file.length + 1);
  shifted.set(file, 1);
  const fromShifted = decodeSafetensors(shifted.subarray(1));
  assertEquals(values(fromShifted.tensors.get("a")), [1.5, -2, 3.25]);
  assertEquals(values(fromShifted.tensors.get("b")), [7n]);
  const aligned = decodeSafetensors(file);
  assertStrictEquals(aligned.tensors.get("a")!.data.buffer, file.buffer, "aligned F32 data aliases the input");
  // The writer lays I64 data out first, so it is 8-aligned (and aliased) although the Map lists it second.
  assertStrictEquals(aligned.tensors.get("b")!.data.buffer, file.buffer, "aligned I64 data aliases the input");
  assertEquals(values(aligned.tensors.get("b")), [7n]);
  assertEquals([...aligned.tensors.keys()], ["a", "b"]);

  const le16 = (values: number[]) => new Uint8Array(new Uint16Array(values).buffer);
  const conversions = rawFile(
    {
      h: { dtype: "F16", shape: [4], data_offsets: [0, 8] },
      b: { dtype: "BF16", shape: [2], data_offsets: [8, 12] },
      d: { dtype: "F64", shape: [1], data_offsets: [12, 20] },
      i: { dtype: "I32", shape: [1], data_offsets: [20, 24] },
      u: { dtype: "U8", shape: [2], data_offsets: [24, 26] },
    },
    new Uint8Array([
      ...le16([0x3c00, 0xc000, 0x7c00, 0x0001]), // 1, -2, +inf, 2^-24 (smallest half subnormal)
      ...le16([0x3f80, 0x4049]), // 1, 3.140625
      ...new Uint8Array(new Float64Array([0.1]).buffer),
      ...new Uint8Array(new Int32Array([-5]).buffer),
      255,
      0,
    ]),
  );
  const { tensors } = decodeSafetensors(conversions);
  assertEquals([...tensors.values()].map((t) => t.dtype), ["F32", "F32", "F32", "I64", "I64"]);
  assertEquals(values(tensors.get("h")), [1, -2, Infinity, 2 ** -24]);
  assertEquals(values(tensors.get("b")), [1, 3.140625]);
  assertEquals(values(tensors.get("d")), [Math.fround(0.1)]);
  assertEquals(values(tensors.get("i")), [-5n]);
  assertEquals(values(tensors.get("u")), [255n, 0n]);
});

Deno.test("tensors come back in header order whatever the offset order", () => {
  const file = rawFile({
    second: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    __metadata__: { k: "v" },
    first: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
  }, new Uint8Array(new Float32Array([1, 2]).buffer));
  const { tensors, metadata } = decodeSafetensors(file);
  assertEquals([...tensors.keys()], ["second", "first"]);
  assertEquals(values(tensors.get("second")), [2]);
  assertEquals(values(tensors.get("first")), [1]);
  assertEquals(metadata, { k: "v" });
});

Deno.test("corrupted corpus: every validation failure is rejected with its own code and message", () => {
  const ok = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  rejected(new Uint8Array(5), "HeaderTooSmall", /not a safetensors file .*: file is 5 bytes, too short for the 8-byte/);
  // A text file (e.g. a README given as --checkpoint): its first 8 bytes read as a huge header length.
  rejected(new TextEncoder().encode("# resnet-webgpu\n"), "HeaderTooLarge", /: not a safetensors file \(an 8-byte/);
  rejected(rawFile("{}", 0, BigInt(MAX_HEADER_SIZE + 1)), "HeaderTooLarge", /header length 100000001 exceeds/);
  rejected(rawFile("{}", 0, 2n ** 64n - 1n), "HeaderTooLarge", /header length 18446744073709551615 exceeds/);
  rejected(rawFile("{}", 0, 1000n), "InvalidHeaderLength", /header length 1000 runs past the end .*\(2 bytes follow/);
  const badUtf8 = rawFile("{}xx");
  badUtf8[10] = 0xff;
  rejected(badUtf8, "InvalidHeader", /header \(bytes 8 to 12\) is not valid UTF-8/);
  rejected(
    rawFile("[1, 2]"),
    "InvalidHeaderStart",
    /not a JSON object: it must begin with '\{' but begins with "\[1, 2\]"/,
  );
  rejected(rawFile(" {}"), "InvalidHeaderStart", /begins with " \{\}"/);
  rejected(rawFile("\ufeff{}"), "InvalidHeaderStart", /must begin with '\{'/);
  rejected(rawFile('{"a": '), "InvalidHeaderDeserialization", /header is not valid JSON/);
  rejected(
    rawFile(
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      8,
    ),
    "DuplicateKey",
    /tensor name "a" appears more than once in the header/,
  );
  rejected(
    rawFile('{"a":{"dtype":"F32","dtype":"I64","shape":[1],"data_offsets":[0,4]}}', 4),
    "DuplicateKey",
    /key "dtype" appears more than once inside "a"/,
  );
  rejected(
    rawFile({ __metadata__: { epoch: 3 } }),
    "InvalidMetadata",
    /value of "epoch" must be a string, got number 3/,
  );
  rejected(
    rawFile({ __metadata__: ["x"] }),
    "InvalidMetadata",
    /"__metadata__" must be an object of strings, got \["x"\]/,
  );
  rejected(
    rawFile({ a: 5 }),
    "InvalidTensorEntry",
    /tensor "a": entry must be an object \{dtype, shape, data_offsets\}, got 5/,
  );
  rejected(
    rawFile({ a: { ...ok.a, dtype: "F33" } }, 8),
    "UnknownDtype",
    /tensor "a": unknown dtype "F33" \(expected one of BOOL/,
  );
  rejected(
    rawFile({ a: { shape: [2], data_offsets: [0, 8] } }, 8),
    "UnknownDtype",
    /tensor "a": unknown dtype undefined/,
  );
  rejected(rawFile({ a: { ...ok.a, shape: "2" } }, 8), "InvalidShape", /tensor "a": shape must be an array .* got "2"/);
  rejected(rawFile({ a: { ...ok.a, shape: [-2] } }, 8), "InvalidShape", /got \[-2\]/);
  rejected(rawFile({ a: { ...ok.a, shape: [1.5] } }, 8), "InvalidShape", /got \[1\.5\]/);
  rejected(
    rawFile({ a: { ...ok.a, data_offsets: [0] } }, 8),
    "InvalidDataOffsets",
    /tensor "a": data_offsets must be \[begin, end\].* got \[0\]/,
  );
  rejected(rawFile({ a: { ...ok.a, data_offsets: ["0", "8"] } }, 8), "InvalidDataOffsets", /got \["0","8"\]/);
  rejected(
    rawFile({ a: { ...ok.a, data_offsets: [4, 12] } }, 12),
    "InvalidOffset",
    /tensor "a": data_offsets \[4, 12\] leaves a gap after the previous tensor; the first tensor must begin at 0/,
  );
  rejected(
    rawFile({ a: ok.a, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, 12),
    "InvalidOffset",
    /tensor "b": data_offsets \[4, 12\] overlaps the previous tensor; "a" ends at 8/,
  );
  rejected(
    rawFile({ a: ok.a, b: { dtype: "F32", shape: [2], data_offsets: [12, 20] } }, 20),
    "InvalidOffset",
    /tensor "b": data_offsets \[12, 20\] leaves a gap after the previous tensor; "a" ends at 8/,
  );
  rejected(
    rawFile({ a: ok.a, b: { dtype: "F32", shape: [0], data_offsets: [8, 4] } }, 8),
    "InvalidOffset",
    /tensor "b": data_offsets \[8, 4\] ends before it begins/,
  );
  rejected(
    rawFile({ a: { dtype: "F32", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8),
    "ValidationOverflow",
    /tensor "a": shape \[1099511627776,1099511627776\] of F32 overflows/,
  );
  rejected(
    rawFile({ a: { dtype: "F4", shape: [3], data_offsets: [0, 1] } }, 1),
    "MisalignedSlice",
    /3 elements of F4 are 12 bits/,
  );
  rejected(
    rawFile({ a: { ...ok.a, data_offsets: [0, 12] } }, 12),
    "TensorInvalidInfo",
    /tensor "a": data_offsets \[0, 12\] hold 12 bytes but dtype F32 with shape \[2\] needs 8/,
  );
  rejected(
    rawFile(ok, 9),
    "MetadataIncompleteBuffer",
    /1 trailing bytes: the tensors end at data offset 8 but the data buffer is 9/,
  );
  rejected(rawFile(ok, 5), "MetadataIncompleteBuffer", /truncated: the tensors need 8 bytes of data but only 5 follow/);
  rejected(
    rawFile({ a: { dtype: "BOOL", shape: [2], data_offsets: [0, 2] } }, 2),
    "UnsupportedDtype",
    /tensor "a": dtype BOOL is valid safetensors but not supported/,
  );
});

Deno.test("a truncated copy of a real file is rejected at every cut point, never half-decoded", () => {
  const file = encodeSafetensors(new Map([["w", f32([4], [1, 2, 3, 4])], ["n", i64([], [5n])]]), { a: "b" });
  for (let cut = 0; cut < file.length; cut++) {
    throws(() => decodeSafetensors(file.subarray(0, cut)), SafetensorsError, `cut at ${cut}`);
  }
  decodeSafetensors(file);
});

Deno.test("encodeSafetensors refuses tensors it cannot write faithfully", () => {
  const cases: [StateDict, RegExp][] = [
    [new Map([["a", f32([2, 2], [1, 2, 3])]]), /tensor "a": shape \[2,2\] has 4 elements but data has 3/],
    [
      new Map([["a", { dtype: "F32", shape: [1], data: new BigInt64Array(1) } as HostTensor]]),
      /dtype F32 does not match its BigInt64Array/,
    ],
    [new Map([["a", f32([-1], [])]]), /shape must be non-negative integers, got \[-1\]/],
    [new Map([["__metadata__", f32([1], [1])]]), /reserved for metadata/],
  ];
  for (const [tensors, message] of cases) throws(() => encodeSafetensors(tensors), message);
  throws(
    () => encodeSafetensors(new Map(), { a: 1 as unknown as string }),
    /metadata "a" must be a string, got number/,
  );
});

Deno.test("writeSafetensors/readSafetensors go through a file; read errors name the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await writeSafetensors(path, new Map([["w", f32([2], [1, 2])]]), { k: "v" });
    const back = await readSafetensors(path);
    assertEquals(values(back.tensors.get("w")), [1, 2]);
    assertEquals(back.metadata, { k: "v" });
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["w.safetensors"], "no temporary file left");
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 1));
    await rejects(readSafetensors(path), (err: Error) => err.message.startsWith(`${path}: file is truncated`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
