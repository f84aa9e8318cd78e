/**
 * Fault injection: kills a small training run (`fault_child.ts`) with SIGKILL at chosen moments — during a step,
 * during evaluation, in the middle of a checkpoint write, between a checkpoint's rename and its folder's fsync, and
 * at random times — then resumes it with `--resume auto` and checks that it ends bit-identical to an uninterrupted
 * run, and that no checkpoint file left in the folder is unreadable.
 *
 *     deno task faults [--trials 20] [--seed 1]      (tests/train/fault_injection_test.ts runs a few in `ok`)
 * @module
 */
import { decodeCheckpoint } from "../io/checkpoint.ts";
import { keyedRandom } from "../data/random.ts";

const CHILD = new URL("./fault_child.ts", import.meta.url).pathname;

/** What a finished run leaves that must not depend on interruptions: tensors, step count, metrics. */
export interface RunOutcome {
  globalStep: number;
  tensors: Map<string, Uint8Array>;
  metrics: unknown[];
}

/** One trial: where the kill was aimed, where it landed, and what resuming gave. */
export interface TrialResult {
  kill: string;
  /** The phase the child reported when it killed itself, or "none" when it finished first. */
  phase: string;
  /** Checkpoint files (not temporary files) left unreadable by the kill. */
  unreadable: string[];
  /** The resumed run's outcome equals the uninterrupted one, bit for bit. */
  identical: boolean;
  /** The first difference, when not identical. */
  difference?: string;
}

/** Runs the child; returns its stdout, failing on any exit but success or SIGKILL. */
async function child(out: string, kill: string, resume: boolean): Promise<string> {
  const { code, signal, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, out, kill, ...(resume ? ["--resume"] : [])],
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0 && signal !== "SIGKILL") {
    throw new Error(
      `fault child ${kill}${resume ? " (resume)" : ""} exited ${code}: ${new TextDecoder().decode(stderr)}`,
    );
  }
  return text;
}

/** The outcome of the run in `out` (its last checkpoint and its metrics without wall-clock fields). */
export async function runOutcome(out: string): Promise<RunOutcome> {
  const state = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  const tensors = new Map<string, Uint8Array>();
  for (const part of ["model", "optimizer"] as const) {
    for (const [name, t] of state[part]) {
      tensors.set(`${part}.${name}`, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
  }
  const metrics = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n").map((l) => {
    const { time: _t, images_per_second: _i, ...rest } = JSON.parse(l);
    return rest;
  });
  return { globalStep: state.globalStep, tensors, metrics };
}

/** The first difference between two outcomes, or undefined when they are identical. */
export function outcomeDifference(a: RunOutcome, b: RunOutcome): string | undefined {
  if (a.globalStep !== b.globalStep) return `global step ${b.globalStep}, expected ${a.globalStep}`;
  if (JSON.stringify(a.metrics) !== JSON.stringify(b.metrics)) {
    return `metrics ${JSON.stringify(b.metrics)}, expected ${JSON.stringify(a.metrics)}`;
  }
  for (const [name, bytes] of a.tensors) {
    const other = b.tensors.get(name);
    if (!other || other.length !== bytes.length || other.some((x, i) => x !== bytes[i])) return `tensor ${name}`;
  }
  return b.tensors.size === a.tensors.size ? undefined : `${b.tensors.size} tensors, expected ${a.tensors.size}`;
}

/** Checkpoint files of `out` that do not load (temporary files of an interrupted write are not checkpoints). */
async function unreadableCheckpoints(out: string): Promise<string[]> {
  const bad: string[] = [];
  for await (const e of Deno.readDir(out)) {
    if (!e.isFile || !e.name.endsWith(".safetensors")) continue;
    try {
      decodeCheckpoint(await Deno.readFile(`${out}/${e.name}`), e.name);
    } catch (err) {
      bad.push(`${e.name}: ${(err as Error).message}`);
    }
  }
  return bad;
}

/** The kills of `trials` trials from `seed`: the phases in turn, each at a random moment of its kind. */
export function killPlan(trials: number, seed: number, runMs: number): string[] {
  const kinds = ["step", "eval", "save", "rename", "time"];
  return Array.from({ length: trials }, (_, i) => {
    const random = keyedRandom(seed, i);
    const r = () => random();
    switch (kinds[i % kinds.length]) {
      case "step":
        return `step:${1 + Math.floor(r() * 7)}`; // steps 1..7 of 8
      case "eval":
        return `eval:${1 + Math.floor(r() * 2)}`;
      case "save":
        return `save:${Math.floor(r() * 8)}:${Math.floor(r() * 4096)}`; // mid-header or mid-first-tensor
      case "rename":
        return `rename:${Math.floor(r() * 8)}`;
      default:
        return `time:${Math.floor(runMs * (0.2 + 0.8 * r()))}`;
    }
  });
}

/** Runs the reference and the trials in folders under `dir`; `onTrial` sees each result as it comes. */
export async function runFaultTrials(
  dir: string,
  kills: string[] | ((runMs: number) => string[]),
  onTrial?: (t: TrialResult) => void,
): Promise<TrialResult[]> {
  const started = performance.now();
  await child(`${dir}/reference`, "none", false);
  const runMs = performance.now() - started;
  const reference = await runOutcome(`${dir}/reference`);
  const results: TrialResult[] = [];
  for (const [i, kill] of (typeof kills === "function" ? kills(runMs) : kills).entries()) {
    const out = `${dir}/trial-${i}`;
    const said = await child(out, kill, false);
    const phase = /phase (\w+)/.exec(said)?.[1] ?? "none";
    const unreadable = await unreadableCheckpoints(out);
    await child(out, "none", true);
    const difference = outcomeDifference(reference, await runOutcome(out));
    const result = { kill, phase, unreadable, identical: difference === undefined, difference };
    results.push(result);
    onTrial?.(result);
  }
  return results;
}

if (import.meta.main) {
  const { parseArgs } = await import("../tasks/args.ts");
  const { values } = parseArgs({ options: { trials: { type: "string" }, seed: { type: "string" } }, strict: true });
  const trials = Number(values.trials ?? 20), seed = Number(values.seed ?? 1);
  const dir = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    const results = await runFaultTrials(dir, (ms) => killPlan(trials, seed, ms), (t) => {
      console.log(
        `${t.kill.padEnd(14)} killed in ${t.phase.padEnd(6)} unreadable ${t.unreadable.length}  ` +
          (t.identical ? "resumed bit-identical" : `DIFFERS: ${t.difference}`),
      );
    });
    const perPhase = new Map<string, number>();
    for (const t of results) perPhase.set(t.phase, (perPhase.get(t.phase) ?? 0) + 1);
    const identical = results.filter((t) => t.identical).length;
    const lost = results.reduce((n, t) => n + t.unreadable.length, 0);
    console.log(
      `${results.length} trials, kills per phase ${JSON.stringify(Object.fromEntries(perPhase))}, ` +
        `${identical} resumed bit-identical, ${lost} checkpoint files unreadable`,
    );
    if (identical !== results.length || lost > 0) Deno.exit(1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
