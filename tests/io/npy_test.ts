import { assertEquals, assertStrictEquals, throws } from "../assert.ts";
import { decodeNpy, encodeNpy, npyHeader, writeNpy } from "../../io/npy.ts";

/** Bytes as a string of U+0000..U+00FF (TextDecoder's "latin1" is windows-1252, which maps 0x93 to a quote). */
const latin1 = (bytes: Uint8Array) => String.fromCharCode(...bytes);

// Headers copied from NumPy 2.4.6 (`numpy.lib.format.write_array_header_1_0(f, {...})`, as `numpy.save` writes
// them): the dict, 21 - len(str(shape[0])) growth spaces (none for a scalar), padding, newline.
const NUMPY_2X3_F4 = "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" +
  " ".repeat(58) + "\n";
const NUMPY_7_I4 = "\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }" +
  " ".repeat(60) + "\n";
const NUMPY_SCALAR_I4 = "\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (), }" +
  " ".repeat(62) + "\n";

Deno.test("encodeNpy writes NumPy's exact header and the raw little-endian data", () => {
  const data = new Float32Array([1, -2.5, 3, NaN, -0, 1e-45]);
  const bytes = encodeNpy(data, [2, 3]);
  assertStrictEquals(latin1(bytes.subarray(0, 128)), NUMPY_2X3_F4);
  assertStrictEquals(NUMPY_2X3_F4.length, 128);
  assertEquals(Array.from(bytes.subarray(128)), Array.from(new Uint8Array(data.buffer)));
  assertStrictEquals(latin1(encodeNpy(new Int32Array(7), [7]).subarray(0, 128)), NUMPY_7_I4);
  assertStrictEquals(latin1(encodeNpy(new Int32Array([-3]), []).subarray(0, 128)), NUMPY_SCALAR_I4);
});

Deno.test("npyHeader pads like NumPy at the 64-byte boundaries (header sizes from numpy.save)", () => {
  // [shape, header bytes NumPy 2.4.6 writes]; 36 ones is the case where NumPy pads a full 64 spaces.
  const cases: [number[], number][] = [
    [[2, 3], 128],
    [[10000, 1000], 128],
    [Array(12).fill(1000), 192],
    [Array(26).fill(1), 192],
    [Array(27).fill(1), 192],
    [Array(36).fill(1), 256],
    [[0], 128],
    [[], 128],
  ];
  for (const [shape, size] of cases) {
    const header = latin1(npyHeader("<f4", shape));
    const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
    const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${tuple}, }`;
    assertStrictEquals(header.length, size, `shape ${tuple}`);
    assertStrictEquals(
      header.slice(0, 10 + dict.length),
      `\x93NUMPY\x01\x00${String.fromCharCode(size - 10)}\x00${dict}`,
    );
    assertStrictEquals(/^ +\n$/.test(header.slice(10 + dict.length)), true, "spaces then a newline");
  }
});

Deno.test("decodeNpy reads back what encodeNpy wrote, bit for bit", () => {
  const f = new Float32Array(new Uint32Array([0x7fc00001, 0x80000000, 1, 0x3f800000]).buffer);
  const back = decodeNpy(encodeNpy(f, [2, 2]));
  assertEquals(back.shape, [2, 2]);
  assertEquals(Array.from(new Uint32Array(back.data.buffer)), [0x7fc00001, 0x80000000, 1, 0x3f800000]);
  const i = decodeNpy(encodeNpy(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0]), [3]));
  assertEquals(Array.from(i.data), [-(2 ** 31), 2 ** 31 - 1, 0]);
  assertStrictEquals(i.data instanceof Int32Array, true);
  assertEquals(decodeNpy(encodeNpy(new Float32Array([4]), [])).shape, []);
});

Deno.test("uint8 arrays (images) round-trip with NumPy's '|u1' header", () => {
  // numpy.save(f, numpy.arange(6, dtype=numpy.uint8).reshape(2, 3)) (NumPy 1.24.2): 128 header bytes, then the data.
  const numpy = "\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }" +
    " ".repeat(58) + "\n";
  const bytes = encodeNpy(Uint8Array.of(0, 1, 2, 3, 4, 255), [2, 3]);
  assertStrictEquals(latin1(bytes.subarray(0, 128)), numpy);
  assertEquals(Array.from(bytes.subarray(128)), [0, 1, 2, 3, 4, 255]);
  const back = decodeNpy(bytes);
  assertStrictEquals(back.data instanceof Uint8Array, true);
  assertEquals([Array.from(back.data), back.shape], [[0, 1, 2, 3, 4, 255], [2, 3]]);
  throws(
    () => decodeNpy(bytes.subarray(0, 133), "u.npy"),
    /u\.npy: shape \(2, 3\) needs 6 data bytes but the file has 5/,
  );
});

Deno.test("encodeNpy and decodeNpy reject bad input with clear errors", () => {
  throws(() => encodeNpy(new Float32Array(5), [2, 3]), /shape \[2,3\] has 6 elements but data has 5/);
  throws(() => encodeNpy(new Float32Array(0), [-1]), /shape must be non-negative integers, got \[-1\]/);
  const good = encodeNpy(new Float32Array([1, 2]), [2]);
  throws(
    () => decodeNpy(good.subarray(0, good.length - 1), "x.npy"),
    /x\.npy: shape \(2,\) needs 8 data bytes but the file has 7/,
  );
  throws(() => decodeNpy(new Uint8Array(20), "x.npy"), /x\.npy: not a \.npy file/);
  const f8 = good.slice();
  f8[latin1(good).indexOf("<f4") + 2] = "8".charCodeAt(0);
  throws(() => decodeNpy(f8, "x.npy"), /unsupported dtype "<f8"/);
});

Deno.test("writeNpy writes the file atomically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeNpy(`${dir}/logits.npy`, new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2]);
    const back = decodeNpy(await Deno.readFile(`${dir}/logits.npy`));
    assertEquals(back.shape, [3, 2]);
    assertEquals(Array.from(back.data), [1, 2, 3, 4, 5, 6]);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["logits.npy"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
