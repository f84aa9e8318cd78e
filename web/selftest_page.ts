/// <reference lib="dom" />
/**
 * The browser self-test (`/?selftest`): runs every shared kernel case (kernels/selftest/cases.ts) on the page's
 * WebGPU device and writes `N passed, M failed` into the element with id `selftest`, each failure in a list below it.
 * @module
 */
import { currentAdapter } from "../kernels/webgpu_backend.ts";
import { startWebGPU } from "./start_webgpu.ts";
import { KERNEL_CASES } from "../kernels/selftest/cases.ts";
import { runKernelCases } from "../kernels/selftest/kernel_case.ts";

/**
 * Runs the self-test into `root` (a section of the page); resolves when every case has run. A non-empty `filter`
 * (`?selftest=conv`) runs only the cases whose name contains it.
 */
export async function runSelfTestPage(root: HTMLElement, filter = ""): Promise<void> {
  const cases = KERNEL_CASES.filter((c) => c.name.includes(filter));
  const heading = document.createElement("h2");
  heading.textContent = "Kernel self-test";
  const outcome = document.createElement("p");
  outcome.id = "selftest";
  const progress = document.createElement("p");
  const failures = document.createElement("ol");
  failures.id = "selftest-failures";
  root.append(heading, progress, outcome, failures);
  try {
    await startWebGPU(false);
  } catch (e) {
    outcome.textContent = `error: ${(e as Error).message}`;
    return;
  }
  const adapter = currentAdapter()!;
  const started = performance.now();
  progress.textContent = `Running ${cases.length} cases on ${adapter.name || adapter.vendor}...`;
  const report = await runKernelCases(cases, (name, error, i) => {
    progress.textContent = `${i + 1}/${cases.length}: ${name}`;
    if (error !== null) {
      const item = document.createElement("li");
      item.textContent = `${name}: ${error}`;
      failures.append(item);
    }
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  progress.textContent = `${cases.length} cases on "${adapter.name || adapter.vendor}" in ${seconds} s`;
  outcome.textContent = `${report.passed} passed, ${report.failed.length} failed`;
}
