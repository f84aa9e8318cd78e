/**
 * `deno task eval --checkpoint PATH [--dataset ...] [--split test|val] [--save-logits out.npy] [--json]`: evaluates a
 * training checkpoint or a bare (e.g. torchvision-exported) safetensors file: loss, top-1, top-5, per-class accuracy
 * and the confusion matrix, as a table or (`--json`) one JSON object; `--save-logits` writes the float32 logits
 * [images, classes] as a NumPy `.npy` file in dataset order; `--out-json PATH` also writes the JSON object to a file
 * (e.g. `runs/NAME/eval.json`, which the dashboard and `deno task report` draw). `--help` lists every flag.
 * @module
 */
import { flagOf, runTask } from "./args.ts";
import { checkOutputPath } from "./output_path.ts";
import { registerFastKernels } from "../kernels/register.ts";
import { initWebGPU } from "../kernels/webgpu_backend.ts";
import { describeSpec, evaluateCheckpoint } from "../train/evaluate_checkpoint.ts";
import { type EvalReport, evalReport } from "../train/eval_report.ts";
import { atomicWriteFile } from "../io/atomic_write.ts";
import { writeNpy } from "../io/npy.ts";
import { evalHelp, parseEvalArgs } from "./eval_flags.ts";

export { type EvalReport, evalReport };

/** Classes up to which the human report prints the confusion matrix (wider ones are only in `--json`). */
export const MAX_PRINTED_CONFUSION = 20;

/**
 * Short, distinct column labels for `names`, at most `width` characters: the prefix all names share is dropped
 * ("pattern0".."pattern9" -> "0".."9"), the rest cut to `width` ("airplane" -> "airpl"); when cutting makes two labels
 * equal, the class indices are used instead.
 */
export function abbreviateNames(names: readonly string[], width: number): string[] {
  let common = 0;
  if (names.length > 1) {
    while (names.every((n) => common < n.length - 1 && n[common] === names[0][common])) common++;
  }
  const short = names.map((n) => n.slice(common, common + width));
  return new Set(short).size === short.length ? short : names.map((_, i) => String(i).slice(0, width));
}

const percent = (x: number | null) => (x === null || Number.isNaN(x) ? "-" : `${(x * 100).toFixed(2)}%`);

/**
 * The human report: a header (model, file, dataset/split, images), loss/top-1/top-5, a per-class table and, for at
 * most {@linkcode MAX_PRINTED_CONFUSION} classes, the confusion matrix (rows: true class, columns: predicted).
 */
export function formatEvalReport(report: EvalReport, extra: { epoch?: number } = {}): string {
  const kind = report.source === "checkpoint"
    ? `training checkpoint${extra.epoch !== undefined ? ` after epoch ${extra.epoch}` : ""}`
    : "bare weights";
  const lines = [
    `model:   ${describeSpec(report.spec)}`,
    `file:    ${report.checkpoint} (${kind})`,
    `data:    ${report.dataset}, ${report.split} split, ${report.numImages} images`,
    "",
    `loss ${report.loss.toFixed(4)}   top-1 ${percent(report.top1)}   top-5 ${percent(report.top5)}`,
    "",
  ];
  const nameWidth = Math.max(5, ...report.perClass.map((c) => c.name.length));
  const countWidth = Math.max(5, ...report.perClass.map((c) => String(c.count).length));
  lines.push(`${"class".padEnd(nameWidth)}  ${"count".padStart(countWidth)}  accuracy`);
  for (const c of report.perClass) {
    lines.push(
      `${c.name.padEnd(nameWidth)}  ${String(c.count).padStart(countWidth)}  ${percent(c.accuracy).padStart(8)}`,
    );
  }
  lines.push("");
  const k = report.perClass.length;
  if (k > MAX_PRINTED_CONFUSION) {
    lines.push(`confusion matrix: ${k} classes, too wide to print; it is in the --json output ("confusion")`);
    return lines.join("\n");
  }
  // Columns as wide as the largest count (at least 5), headers abbreviated to fit.
  const cell = Math.max(5, ...report.confusion.flat().map((n) => String(n).length));
  const names = report.perClass.map((c) => c.name);
  const columns = abbreviateNames(names, cell);
  const rowHead = Math.min(nameWidth, 16);
  const rows = names.map((n) => (n.length <= rowHead ? n : n.slice(0, rowHead - 1) + "~"));
  lines.push("confusion matrix (rows: true class, columns: predicted class)");
  lines.push(`${"".padEnd(rowHead)} ${columns.map((c) => c.padStart(cell)).join(" ")}`);
  report.confusion.forEach((row, t) => {
    lines.push(`${rows[t].padEnd(rowHead)} ${row.map((n) => String(n).padStart(cell)).join(" ")}`);
  });
  return lines.join("\n");
}

/**
 * A progress reporter for {@linkcode evaluateCheckpoint}'s `onImages`: one line (`evaluated 2,560/10,000 images`)
 * each time another tenth of the images is done, so that a long evaluation is seen to advance.
 */
export function progressLines(print: (line: string) => void): (done: number, total: number) => void {
  let tenths = 0;
  const count = (n: number) => n.toLocaleString("en-US");
  return (done, total) => {
    const now = Math.floor((done * 10) / total);
    if (now <= tenths) return;
    tenths = now;
    print(`evaluated ${count(done)}/${count(total)} images`);
  };
}

if (import.meta.main) {
  await runTask(async () => {
    const config = parseEvalArgs(Deno.args);
    if (config === "help") return void console.log(evalHelp());
    if (config.outJson !== null) await checkOutputPath(config.outJson, "--out-json");
    if (config.saveLogits !== null) await checkOutputPath(config.saveLogits, "--save-logits");
    await initWebGPU();
    registerFastKernels();
    const evaluation = await evaluateCheckpoint(config, {
      onWarning: (m) => console.error(`warning: ${m}`),
      nameOf: flagOf,
      onProgress: (m) => console.error(m),
      onImages: progressLines((line) => console.error(line)), // stderr: --json keeps stdout one object
    });
    const report = evalReport(config.checkpoint, evaluation);
    // The results first: a file that cannot be written after all (a full disk) must not lose minutes of evaluation.
    if (config.json) console.log(JSON.stringify(report));
    else console.log(formatEvalReport(report, { epoch: evaluation.epoch }));
    if (config.saveLogits !== null) {
      // [numImages, numClasses] float32 in dataset order, written atomically.
      await writeNpy(config.saveLogits, evaluation.logits!, [evaluation.numImages, evaluation.numClasses]);
      if (!config.json) {
        console.log(`\nlogits: ${config.saveLogits} [${evaluation.numImages}, ${evaluation.numClasses}] float32`);
      }
    }
    if (config.outJson !== null) {
      // Atomic, so the dashboard, which reads the run folder while we write, never sees half a report.
      await atomicWriteFile(config.outJson, new TextEncoder().encode(JSON.stringify(report) + "\n"));
    }
  });
}
