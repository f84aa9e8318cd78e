import { assertEquals, assertStrictEquals, throws } from "../assert.ts";
import { readMat5 } from "../../data/mat5.ts";
import { parseGroundTruth, parseMetaMat } from "../../data/imagenet_devkit.ts";
import { join } from "node:path";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
const SCRIPT = join(FIXTURES, "imagenet_meta.py");

/** The fixture's leaf synsets in file order, as torchvision's parse_meta_mat reads them (see imagenet_meta.py). */
const LEAVES = [
  { id: 1, wnid: "n01530575", words: "brambling, Fringilla montifringilla" },
  { id: 2, wnid: "n01440764", words: "tench, Tinca tinca" },
  { id: 3, wnid: "n01484850", words: "great white shark, white shark, man-eater, Carcharodon carcharias" },
  { id: 4, wnid: "n01443537", words: "goldfish, Carassius auratus" },
];

/** A Python with scipy, or null (then the run-time scipy test is ignored; the committed fixtures still run). */
const SCIPY_PYTHON: string | null = (() => {
  for (const python of ["python3", "/usr/bin/python3"]) {
    try {
      if (new Deno.Command(python, { args: ["-c", "import scipy.io"], stderr: "null" }).outputSync().success) {
        return python;
      }
    } catch { /* not installed */ }
  }
  return null;
})();

for (const file of ["imagenet_meta.mat", "imagenet_meta_compressed.mat"]) {
  Deno.test(`readMat5 reads scipy's ${file}: the struct array, its strings, numbers and empty fields`, () => {
    const path = join(FIXTURES, file);
    const vars = readMat5(Deno.readFileSync(path), path);
    assertEquals([...vars.keys()], ["synsets", "note"]);
    assertEquals(vars.get("note"), {
      kind: "char",
      dims: [1, 48],
      rows: ["miniature of ILSVRC2012_devkit_t12/data/meta.mat"],
    });
    const s = vars.get("synsets")!;
    if (s.kind !== "struct") throw new Error(`expected a struct, got ${s.kind}`);
    assertEquals(s.dims, [6, 1]);
    assertEquals(s.fields, [
      "ILSVRC2012_ID",
      "WNID",
      "words",
      "gloss",
      "num_children",
      "children",
      "wordnet_height",
      "num_train_images",
    ]);
    const fish = s.elements[5];
    assertEquals(fish.WNID, { kind: "char", dims: [1, 9], rows: ["n02512053"] });
    assertEquals(fish.children, { kind: "numeric", class: "double", dims: [1, 3], data: Float64Array.from([2, 3, 4]) });
    assertEquals(s.elements[0].children, { kind: "numeric", class: "double", dims: [1, 0], data: new Float64Array(0) });
    assertEquals(parseMetaMat(Deno.readFileSync(path), path), LEAVES);
  });
}

Deno.test({
  name: "readMat5 reads what scipy.io.savemat writes now, compressed or not, as torchvision's parse_meta_mat does",
  ignore: SCIPY_PYTHON === null,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      for (const compress of [false, true]) {
        const out = join(dir, `meta${compress}.mat`);
        const args = [SCRIPT, out, ...(compress ? ["--compress"] : [])];
        const run = await new Deno.Command(SCIPY_PYTHON!, { args }).output();
        assertStrictEquals(run.code, 0, new TextDecoder().decode(run.stderr));
        assertEquals(parseMetaMat(await Deno.readFile(out), out), LEAVES);
        // torchvision's own reading of the same file: leaves (num_children == 0), their IDs, WNIDs and words.
        const py = await new Deno.Command(SCIPY_PYTHON!, {
          args: [
            "-c",
            "import json, sys, scipy.io as sio\n" +
            "meta = sio.loadmat(sys.argv[1], squeeze_me=True)['synsets']\n" +
            "leaves = [m for m in meta if m[4] == 0]\n" +
            "print(json.dumps([{'id': int(m[0]), 'wnid': str(m[1]), 'words': str(m[2])} for m in leaves]))",
            out,
          ],
        }).output();
        assertStrictEquals(py.code, 0, new TextDecoder().decode(py.stderr));
        assertEquals(JSON.parse(new TextDecoder().decode(py.stdout)), LEAVES);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("readMat5 rejects what it cannot read, naming the file and the byte offset", () => {
  const plain = Deno.readFileSync(join(FIXTURES, "imagenet_meta.mat"));
  const compressed = Deno.readFileSync(join(FIXTURES, "imagenet_meta_compressed.mat"));
  throws(
    () => readMat5(plain.subarray(0, 100), "m.mat"),
    /m\.mat: 100 bytes, too short for a MAT-file's 128-byte header/,
  );
  const notMat = plain.slice();
  notMat.set(new TextEncoder().encode("MATLAB 7.3 HDF5"), 0);
  throws(() => readMat5(notMat, "m.mat"), /m\.mat: not a MATLAB level-5 MAT-file \(expected "MATLAB 5\.0 MAT-file"/);
  throws(
    () => readMat5(plain.subarray(0, 3000), "cut.mat"),
    /cut\.mat: at byte 128: a data element of type 14 claims \d+ bytes but \d+ remain/,
  );
  // A damaged zlib stream, and one whose inflated matrix is cut short.
  const damaged = compressed.slice();
  for (let i = 140; i < 160; i++) damaged[i] ^= 0xff;
  throws(() => readMat5(damaged, "z.mat"), /z\.mat: at byte 128: compressed element does not inflate/);
  // A matrix whose flags say "sparse".
  const sparse = plain.slice();
  sparse[128 + 16] = 5; // the class byte of the first array flags (tag 8 bytes, flags tag 8 bytes)
  throws(() => readMat5(sparse, "s.mat"), /s\.mat: at byte 144: sparse arrays are not supported/);
  throws(() => parseMetaMat(sparse, "s.mat"), /s\.mat: at byte 144/);
});

Deno.test("parseMetaMat and parseGroundTruth name what is wrong", () => {
  const plain = Deno.readFileSync(join(FIXTURES, "imagenet_meta.mat"));
  const renamed = plain.slice();
  const at = new TextDecoder("latin1").decode(renamed).indexOf("synsets");
  renamed.set(new TextEncoder().encode("synsetz"), at);
  throws(() => parseMetaMat(renamed, "meta.mat"), /meta\.mat: expected a struct array "synsets".*found nothing/);
  assertEquals(parseGroundTruth("490\n361\r\n171\n", "gt.txt"), Int32Array.from([490, 361, 171]));
  throws(() => parseGroundTruth("490\nx\n", "gt.txt"), /gt\.txt: line 2 is "x", expected an ILSVRC2012_ID/);
});
