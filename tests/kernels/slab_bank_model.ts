/**
 * A model of how a GEMM shader of {@linkcode GemmProgram} uses workgroup memory, computed from its WGSL text: every
 * thread's slab stores and inner-loop reads are found in the code and their index expressions evaluated, which gives
 * (1) which element of A or B each word of a slab holds, so that a test can check that every read gets the element
 * the multiply expects (a store/read layout mismatch, e.g. a swizzle applied on one side only, shows without a GPU),
 * and (2) the bank conflicts of every store and read instruction.
 *
 * Banks are modelled as on NVIDIA and AMD: 32 banks of 4 bytes; an access is served in phases of 128 bytes, i.e.
 * 32 threads for 32-bit accesses and a quarter warp (8 threads) for 128-bit ones, in local-invocation-index order.
 * A phase whose threads touch n different words in one bank takes n passes (an n-way conflict; threads reading the
 * same word share it). A prediction, not a measurement: the GPU run must confirm it.
 * @module
 */
import type { GemmProgram, GemmSpec } from "../../kernels/gemm_program.ts";
import { tileThreads } from "../../kernels/gemm_tiling.ts";

type Env = Record<string, number>;
type Expr = (env: Env) => number;

const compiled = new Map<string, Expr>();

/**
 * Compiles a WGSL i32 expression of integer literals, names, `+ - * / % ^` and parentheses (what the generator emits
 * for slab indices) into a function; `/` and `%` truncate toward zero as WGSL's i32 do.
 * @throws {Error} on anything else, naming the expression.
 */
export function compileIndex(source: string): Expr {
  const hit = compiled.get(source);
  if (hit) return hit;
  const tokens = source.match(/\d+[iu]?|\w+|[-+*/%^()]|\S/g) ?? [];
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`cannot evaluate WGSL index '${source}': ${what} at token ${at}`);
  };
  const binary = (ops: string[], next: () => Expr): () => Expr => () => {
    let left = next();
    while (ops.includes(tokens[at])) {
      const op = tokens[at++], l = left, r = next();
      left = op === "+"
        ? (e) => (l(e) + r(e)) | 0
        : op === "-"
        ? (e) => (l(e) - r(e)) | 0
        : op === "*"
        ? (e) => Math.imul(l(e), r(e))
        : op === "/"
        ? (e) => Math.trunc(l(e) / r(e)) | 0
        : op === "%"
        ? (e) => l(e) % r(e) | 0
        : (e) => l(e) ^ r(e);
    }
    return left;
  };
  const primary = (): Expr => {
    const t = tokens[at++];
    if (t === undefined) return fail("unexpected end");
    if (t === "(") {
      const inner = xor();
      if (tokens[at++] !== ")") fail("expected ')'");
      return inner;
    }
    if (t === "-") {
      const p = primary();
      return (e) => -p(e) | 0;
    }
    if (/^\d/.test(t)) {
      const v = parseInt(t, 10);
      return () => v;
    }
    if (/^\w+$/.test(t)) {
      return (e) => {
        const v = e[t];
        if (v === undefined) throw new Error(`WGSL index '${source}': '${t}' is not defined`);
        return v;
      };
    }
    return fail(`unexpected '${t}'`);
  };
  const mul = binary(["*", "/", "%"], primary);
  const add = binary(["+", "-"], mul);
  const xor = binary(["^"], add);
  const expr = xor();
  if (at !== tokens.length) fail("trailing tokens");
  compiled.set(source, expr);
  return expr;
}

/** One element of an operand: A(m, k) or B(k, n), `outer` being m or n. */
export interface Element {
  k: number;
  outer: number;
}

/** Worst bank conflict of each kind of workgroup-memory access of one shader (1: none). */
export interface BankWays {
  aStore: number;
  bStore: number;
  aRead: number;
  bRead: number;
}

/** What {@linkcode slabModel} finds. */
export interface SlabModel {
  ways: BankWays;
  /** Descriptions of reads that get another element than the multiply needs, or slab words stored twice (empty: none). */
  mismatches: string[];
}

/** One store or read instruction, as executed by every thread: the words it touches per thread. */
type Access = { kind: "store" | "read"; width: 1 | 4; words: (tid: number) => number };

/** Conflict ways of one instruction over the workgroup's phases. */
function accessWays(a: Access, threads: number): number {
  const phase = a.width === 4 ? 8 : 32;
  let worst = 1;
  for (let p0 = 0; p0 < threads; p0 += phase) {
    const banks = new Map<number, Set<number>>();
    for (let tid = p0; tid < Math.min(p0 + phase, threads); tid++) {
      const first = a.words(tid);
      for (let w = first; w < first + a.width; w++) {
        const b = w % 32;
        if (!banks.has(b)) banks.set(b, new Set());
        banks.get(b)!.add(w);
      }
    }
    for (const words of banks.values()) worst = Math.max(worst, words.size);
  }
  return worst;
}

/** The `{ ... }` body of the slab loop `for (var s ...)`. */
export function slabLoop(code: string): string {
  const start = code.indexOf("for (var s = 0; s < SLABS; s++)");
  if (start < 0) throw new Error("no slab loop with a constant trip count");
  let depth = 0;
  for (let i = code.indexOf("{", start); i < code.length; i++) {
    if (code[i] === "{") depth++;
    if (code[i] === "}" && --depth === 0) return code.slice(start, i + 1);
  }
  throw new Error("unbalanced braces");
}

/**
 * Models the workgroup-memory accesses of `program` (see the module documentation): the slab stores of buffer 0 (the
 * first store of each staging register) and the reads of the first slab (`cur` = 0).
 */
export function slabModel(program: GemmProgram): SlabModel {
  const spec: GemmSpec = program.spec;
  const t = spec.tiling;
  const code = program.getUserCode();
  const threads = tileThreads(t);
  const threadsX = t.tileN / t.threadN;
  const ids = (tid: number): Env => ({ tid, tx: tid % threadsX, ty: Math.floor(tid / threadsX), cur: 0 });
  const mismatches: string[] = [];
  const accesses = { As: [] as Access[], Bs: [] as Access[] };
  // Slab word -> element, per operand.
  const held = { As: new Map<number, string>(), Bs: new Map<number, string>() };
  const key = (e: Element) => `${e.k},${e.outer}`;

  // Stores: `{ let kk = ...; let oo = ...; As[i] = pA0; }` or, per component, `Bs[i][c] = pB0.x; ...`. The first
  // store of each register fills buffer 0; with two buffers, the one in the slab loop fills the other buffer.
  const slabWords = { As: t.tileM * t.tileK, Bs: t.tileN * t.tileK };
  const firstStore = new Map<string, (e: Env) => number>();
  for (
    const block of code.matchAll(
      /\{ ((?:let \w+ = [^;]+; )+)((?:[AB]s\[[^\]]+\](?:\[[^\]]+\])? = p[AB]\d+(?:\.[xyzw])?; ?)+)\}/g,
    )
  ) {
    const lets = [...block[1].matchAll(/let (\w+) = ([^;]+);/g)].map((m) => [m[1], compileIndex(m[2])] as const);
    const env = (tid: number) => {
      const e = ids(tid);
      for (const [name, f] of lets) e[name] = f(e);
      return e;
    };
    for (const s of block[2].matchAll(/([AB]s)\[([^\]]+)\](?:\[([^\]]+)\])? = (p[AB]\d+)(?:\.([xyzw]))?;/g)) {
      const [, smem, index, component, reg, lane] = s;
      const id = `${reg}.${lane ?? ""}`;
      const operand = smem as "As" | "Bs";
      const vec4 = operand === "As" ? !!spec.aVec4 : !!spec.bVec4;
      const alongK = (operand === "As" ? spec.aContiguous : spec.bContiguous) === "k";
      const fIndex = compileIndex(index), fComponent = component ? compileIndex(component) : undefined;
      const word = (e: Env) => 4 * fIndex(e) + (fComponent ? fComponent(e) : 0);
      const first = firstStore.get(id);
      if (first) {
        // The store into buffer 1 - cur (cur = 0 here): the same layout, one slab further.
        for (let tid = 0; tid < threads; tid++) {
          const e = env(tid);
          if (word(e) !== first(e) + slabWords[operand]) {
            mismatches.push(
              `thread ${tid}: ${reg} stored into the other buffer at word ${word(e)}, not ${
                first(e) + slabWords[operand]
              }`,
            );
            break;
          }
        }
        continue;
      }
      firstStore.set(id, word);
      // A staging register holds the element at (k0 + kk, base + oo), vec4: and the next three along the operand's
      // contiguous index; `lane` picks one of them.
      const lanes = !vec4 ? [0] : lane ? ["xyzw".indexOf(lane)] : [0, 1, 2, 3];
      for (let tid = 0; tid < threads; tid++) {
        const e = env(tid);
        for (let j = 0; j < lanes.length; j++) {
          const c = lanes[j];
          const el = { k: e.kk + (alongK ? c : 0), outer: e.oo + (alongK ? 0 : c) };
          const w = word(e) + (lane || !vec4 ? 0 : j);
          if (held[operand].has(w)) mismatches.push(`${operand} word ${w} stored twice (${reg})`);
          held[operand].set(w, key(el));
        }
      }
      const whole = vec4 && !lane;
      if (whole && fComponent) throw new Error(`a vec4 stored into one component: ${s[0]}`);
      accesses[operand].push({ kind: "store", width: whole ? 4 : 1, words: (tid) => word(env(tid)) });
    }
  }
  for (const operand of ["As", "Bs"] as const) {
    if (held[operand].size !== slabWords[operand]) {
      mismatches.push(`${operand}: ${held[operand].size} words stored, the slab has ${slabWords[operand]}`);
    }
  }

  // Reads of the first slab: `// k + kk` opens each k step; A along k reads rows `r<i>` for four k before them.
  const loop = slabLoop(code);
  const offsets: Record<string, Expr> = {};
  for (const m of loop.matchAll(/let ([ab]Off) = ([^;]+);/g)) offsets[m[1]] = compileIndex(m[2]);
  const readEnv = (tid: number) => {
    const e = ids(tid);
    for (const [name, f] of Object.entries(offsets)) e[name] = f(e);
    return e;
  };
  let kk = -1;
  const pendingRows: { name: string; index: string }[] = [];
  const reads: { kk: number; name: string; index: string }[] = [];
  for (const m of loop.matchAll(/\/\/ k \+ (\d+)\n|let ([abr]\d+) = [AB]s\[([^\]]+)\];/g)) {
    if (m[1] !== undefined) {
      kk = Number(m[1]);
      for (const r of pendingRows.splice(0)) reads.push({ kk, ...r });
    } else if (m[2].startsWith("r")) pendingRows.push({ name: m[2], index: m[3] });
    else reads.push({ kk, name: m[2], index: m[3] });
  }
  if (pendingRows.length > 0) throw new Error("A rows read after the last k step");
  // Every k step's reads were found (a format the patterns miss must not pass as conflict-free).
  const bReads = t.tileK * (t.threadN / 4);
  const aReads = spec.aContiguous === "k" ? (t.tileK / 4) * t.threadM : t.tileK * (t.threadM / 4);
  const found = (p: string) => reads.filter((r) => r.name.startsWith(p)).length;
  if (found("b") !== bReads) mismatches.push(`${found("b")} B reads found, the slab has ${bReads}`);
  if (found("a") + found("r") !== aReads) mismatches.push(`${found("a") + found("r")} A reads found, need ${aReads}`);
  for (const r of reads) {
    const i = Number(r.name.slice(1));
    const operand = r.name.startsWith("b") ? "Bs" : "As";
    // The elements the multiply takes from this vec4: B columns 4(tx + TX·j) + c of row kk; A rows ty·RM + 4i + c
    // at kk (a<i>), or row ty·RM + i at k = kk + c (r<i>, four k of one row).
    const expected = (e: Env, c: number): Element =>
      r.name.startsWith("b")
        ? { k: r.kk, outer: 4 * (e.tx + threadsX * i) + c }
        : r.name.startsWith("a")
        ? { k: r.kk, outer: e.ty * t.threadM + 4 * i + c }
        : { k: r.kk + c, outer: e.ty * t.threadM + i };
    const f = compileIndex(r.index);
    for (let tid = 0; tid < threads; tid++) {
      const e = readEnv(tid);
      for (let c = 0; c < 4; c++) {
        const got = held[operand].get(4 * f(e) + c), want = key(expected(e, c));
        if (got !== want && mismatches.length < 20) {
          mismatches.push(
            `thread ${tid} ${r.name} = ${operand}[${r.index}] at k + ${r.kk}: lane ${c} holds ${got}, needs ${want}`,
          );
        }
      }
    }
    accesses[operand].push({ kind: "read", width: 4, words: (tid) => 4 * f(readEnv(tid)) });
  }
  const worst = (list: Access[], kind: Access["kind"]) =>
    Math.max(1, ...list.filter((a) => a.kind === kind).map((a) => accessWays(a, threads)));
  return {
    ways: {
      aStore: worst(accesses.As, "store"),
      bStore: worst(accesses.Bs, "store"),
      aRead: worst(accesses.As, "read"),
      bRead: worst(accesses.Bs, "read"),
    },
    mismatches,
  };
}
