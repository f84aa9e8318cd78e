/**
 * Library code names configuration fields, not command-line flags: its messages say `{decoder}` (a
 * `FieldMessageError` template, io/config_error.ts) and the command line says `--decoder`. A flag written into a
 * library string would be wrong for every other caller (the browser page, a script) and drift from `tasks/`.
 * @module
 */
import { assert, assertEquals } from "./assert.ts";

/** Library folders (up to `train/`) whose strings must not name our flags. */
const FOLDERS = ["kernels", "io", "dist", "models", "data", "train", "report"];
/** Flags of other programs, which a message may well name. */
const OTHER_PROGRAMS = [/srun --mpi=/];

/** The string literals of `source` ("", '', ``), comments left out. */
export function stringLiterals(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|\s)\/\/.*$/gm, "$1");
  return [...code.matchAll(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g)].map((m) => m[0]);
}

/** The command-line flags `literal` names, e.g. ["--decoder"]. */
export function flagsIn(literal: string): string[] {
  if (OTHER_PROGRAMS.some((re) => re.test(literal))) return [];
  return [...literal.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]);
}

Deno.test("library strings name configuration fields, not command-line flags", async () => {
  const found: string[] = [];
  let files = 0;
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(new URL(`../${dir}`, import.meta.url))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (/\.(ts|js)$/.test(e.name)) {
        files++;
        const source = await Deno.readTextFile(new URL(`../${path}`, import.meta.url));
        for (const s of stringLiterals(source)) for (const flag of flagsIn(s)) found.push(`${path}: ${flag} in ${s}`);
      }
    }
  };
  for (const folder of FOLDERS) await walk(folder);
  assert(files > 50, `only ${files} files read`); // a broken walk must not pass by seeing nothing
  assertEquals(found, []);
});

Deno.test("the check sees flags in strings, and not in comments, decrements or other programs' command lines", () => {
  const source = [
    `throw new Error("use --decoder js");`,
    "const t = `see ${x} --image-size`; // --ignored-comment",
    `/** --in-a-doc-comment */ if (--open === 0) close();`,
    `const s = 'srun --mpi=pmix';`,
    `const u = "https://example.org/a--b";`,
  ].join("\n");
  assertEquals(stringLiterals(source).flatMap(flagsIn), ["--decoder", "--image-size"]);
});
