/**
 * One kernel correctness case: a name and a function that runs our kernel on the active `webgpu` backend, compares
 * it with its reference and throws {@linkcode KernelCaseFailure} (saying what differed) when it does not match. The
 * Deno tests and the browser self-test (web/selftest.ts) run the same list, so that both WebGPU implementations —
 * wgpu/naga under Deno, Dawn/Tint in Chromium — compile and check every shader.
 * @module
 */
import { takeWebGPUErrors } from "../webgpu_backend.ts";
import { relativeError } from "./relative_error.ts";

/** A named check of one kernel configuration. */
export interface KernelCase {
  /** What the case checks, e.g. "conv forward [2,9,9,3,8,3,1,1] on the 64x64x16 tile, split-K 2". */
  name: string;
  /** Runs the case; resolves when it matches its reference, rejects with the difference when not. */
  run(): Promise<void>;
}

/** A kernel result that does not match its reference (or a kernel that did not run). */
export class KernelCaseFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KernelCaseFailure";
  }
}

/** Throws {@linkcode KernelCaseFailure} with `message` unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new KernelCaseFailure(message);
}

/** Throws unless `actual` and `expected` have the same JSON form (arrays of numbers, booleans, strings). */
export function checkSame(actual: unknown, expected: unknown, what: string): void {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  check(a === e, `${what}: got ${a}, expected ${e}`);
}

/** The outcome of running a list of cases. */
export interface KernelCaseReport {
  passed: number;
  /** Failed cases, each with its error message. */
  failed: { name: string; error: string }[];
}

/** Runs `cases` one after another (each GPU-heavy), calling `onResult` after each; never throws for a case. */
export async function runKernelCases(
  cases: readonly KernelCase[],
  onResult: (name: string, error: string | null, index: number) => void = () => {},
): Promise<KernelCaseReport> {
  const report: KernelCaseReport = { passed: 0, failed: [] };
  for (const [i, c] of cases.entries()) {
    try {
      await c.run();
      report.passed++;
      onResult(c.name, null, i);
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      report.failed.push({ name: c.name, error });
      onResult(c.name, error, i);
    }
  }
  return report;
}

/** Throws when the device reported errors (an invalid shader or pipeline leaves its output unwritten) since the last check. */
export function checkNoDeviceErrors(where: string): void {
  const errors = takeWebGPUErrors();
  check(errors.length === 0, `${where}: WebGPU reported ${errors.length} error(s); the first: ${errors[0]}`);
}

/** Throws unless max |actual − expected| / max |expected| is at most `tolerance` (see relativeError). */
export function checkClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
  where: string,
): void {
  check(actual.length === expected.length, `${where}: ${actual.length} elements, expected ${expected.length}`);
  const err = relativeError(actual, expected);
  check(err <= tolerance, `${where}: relative error ${err} (tolerance ${tolerance})`);
}
