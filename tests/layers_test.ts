/**
 * The import graph shows the architecture: folders form layers that point one way, and no file imports itself
 * through a cycle. The order, bottom first:
 *
 *     kernels  ->  io  ->  dist  ->  models | data  ->  train  ->  bench | report | web  ->  tasks
 *
 * A folder imports its own files and the folders below it; `models` and `data` are peers and do not import each
 * other, nor do `bench`, `report` and `web` (the browser page); `mod.ts` (the public API) imports the library folders, never `bench` or `tasks`; tests import anything.
 * @module
 */
import { assert, assertEquals } from "./assert.ts";

/** Each folder's layer; a file may import from a strictly lower layer or from its own folder. */
const LAYERS: Record<string, number> = {
  kernels: 0,
  io: 1,
  dist: 1.5,
  models: 2,
  data: 2,
  train: 3,
  bench: 4,
  report: 4,
  web: 4,
  tasks: 5,
};
/** mod.ts sits above the library and below the command lines. */
const MOD_LAYER = 3.5;

/** A file's imports of other files of ours, as paths from the repository root. */
export type ImportGraph = Map<string, string[]>;

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)"(\.{1,2}\/[^"]+)"|new URL\(\s*"(\.{1,2}\/[^"]+\.ts)"/g;

/** The relative specifiers of `source`: static and dynamic imports, re-exports and `new URL("x.ts", …)` workers. */
export function importSpecifiers(source: string): string[] {
  // Examples in JSDoc (mod.ts shows its own import line) and commented-out code are not imports.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  return [...code.matchAll(SPECIFIER)].map((m) => m[1] ?? m[2]);
}

/** `spec` imported from `from` (both relative to the repository root), normalised; null when it leaves the root. */
export function resolveImport(from: string, spec: string): string | null {
  const parts = from.split("/").slice(0, -1);
  for (const part of spec.split("/")) {
    if (part === "..") {
      if (parts.length === 0) return null;
      parts.pop();
    } else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

function layerOf(file: string): number | "test" | undefined {
  if (file === "mod.ts") return MOD_LAYER;
  const folder = file.split("/")[0];
  if (folder === "tests") return "test";
  return LAYERS[folder];
}

/** Every import against the layer order, as "a.ts -> b.ts (why)". */
export function layerViolations(graph: ImportGraph): string[] {
  const bad: string[] = [];
  for (const [file, imports] of graph) {
    const own = layerOf(file);
    if (own === "test") continue;
    if (own === undefined) {
      bad.push(`${file}: not in a known folder (${Object.keys(LAYERS).join(", ")})`);
      continue;
    }
    for (const target of imports) {
      const theirs = layerOf(target);
      const sameFolder = file.split("/")[0] === target.split("/")[0] && file !== "mod.ts";
      if (sameFolder) continue;
      if (theirs === "test") bad.push(`${file} -> ${target} (library code imports a test)`);
      else if (theirs === undefined) bad.push(`${file} -> ${target} (not in a known folder)`);
      else if (theirs >= own) bad.push(`${file} -> ${target} (layer ${theirs} is not below layer ${own})`);
    }
  }
  return bad;
}

/** Every import cycle among files, each as its files in order with the first repeated at the end. */
export function importCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      const s = state.get(next);
      if (s === "open") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}

const ROOT = new URL("../", import.meta.url);

async function repositoryGraph(): Promise<ImportGraph> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(new URL(dir, ROOT))) {
      const path = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory && !e.name.startsWith(".") && !["runs", "node_modules"].includes(e.name)) await walk(path);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk("");
  const graph: ImportGraph = new Map();
  for (const file of files.sort()) {
    const source = await Deno.readTextFile(new URL(file, ROOT));
    const targets = importSpecifiers(source).map((s) => resolveImport(file, s)).filter((t): t is string =>
      t !== null && t.endsWith(".ts")
    );
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

Deno.test("every import follows the layer order kernels -> io -> dist -> models|data -> train -> bench|report|web -> tasks", async () => {
  const graph = await repositoryGraph();
  // The walk found the library: a broken walk must not pass by seeing nothing.
  for (const folder of Object.keys(LAYERS)) {
    assertEquals([...graph.keys()].some((f) => f.startsWith(`${folder}/`)), true, `no files found in ${folder}/`);
  }
  assertEquals(layerViolations(graph), []);
});

Deno.test("no import cycles between files", async () => {
  assertEquals(importCycles(await repositoryGraph()), []);
});

Deno.test("the checks see what they guard: specifiers, upward and peer imports, cycles", () => {
  assertEquals(
    importSpecifiers(
      `import { a } from "./a.ts";\nimport type { B } from "../io/b.ts";\nexport * from "./c.ts";\n` +
        `import "./side_effect.ts";\nconst m = await import("./lazy.ts");\n` +
        `new Worker(new URL("./worker.ts", import.meta.url));\nimport * as tf from "@tensorflow/tfjs";\n` +
        `/** import { x } from "./in_a_doc_comment.ts"; */\n// import { y } from "./commented_out.ts";`,
    ),
    ["./a.ts", "../io/b.ts", "./c.ts", "./side_effect.ts", "./lazy.ts", "./worker.ts"],
  );
  assertEquals(resolveImport("train/trainer.ts", "../io/checkpoint.ts"), "io/checkpoint.ts");
  assertEquals(resolveImport("mod.ts", "./models/resnet.ts"), "models/resnet.ts");
  assertEquals(resolveImport("mod.ts", "../outside.ts"), null);
  const graph: ImportGraph = new Map([
    ["kernels/k.ts", ["io/h.ts"]], // upward
    ["models/m.ts", ["data/d.ts", "kernels/k.ts"]], // peer, then downward (fine)
    ["train/t.ts", ["tasks/args.ts"]], // library -> command line
    ["mod.ts", ["tasks/train.ts", "train/t.ts"]], // the public API must not hold CLI parsing
    ["tests/x_test.ts", ["tasks/train.ts"]], // tests may import anything
    ["data/d.ts", []],
    ["io/h.ts", []],
    ["tasks/train.ts", ["train/t.ts"]],
    ["tasks/args.ts", []],
  ]);
  const bad = layerViolations(graph);
  assertEquals(bad.length, 4, bad.join("\n"));
  assert(/^kernels\/k\.ts -> io\/h\.ts/.test(bad[0]), bad[0]);
  assert(/^models\/m\.ts -> data\/d\.ts/.test(bad[1]), bad[1]);
  assert(/^train\/t\.ts -> tasks\/args\.ts/.test(bad[2]), bad[2]);
  assert(/^mod\.ts -> tasks\/train\.ts/.test(bad[3]), bad[3]);
  const cyclic: ImportGraph = new Map([
    ["data/a.ts", ["data/b.ts"]],
    ["data/b.ts", ["data/c.ts"]],
    ["data/c.ts", ["data/a.ts"]],
    ["data/d.ts", ["data/a.ts"]],
  ]);
  assertEquals(importCycles(cyclic), [["data/a.ts", "data/b.ts", "data/c.ts", "data/a.ts"]]);
});
