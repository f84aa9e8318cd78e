/**
 * `deno task report RUN [RUN ...]`: writes `RUN/report.html`, one self-contained file with the run's charts (loss,
 * top-1, learning rate, images/s per epoch, the evaluation pictures of `eval --out-json RUN/eval.json`) and its
 * configuration, which opens offline from disk. `deno task train` writes it too at the end of a run.
 * @module
 */
import { parseArgs, runTask, UsageError } from "./args.ts";
import { join } from "node:path";
import { statIfExists } from "../io/stat_if_exists.ts";
import { writeRunReport } from "../report/write_report.ts";

const USAGE = "Usage: deno task report RUN [RUN ...]   (e.g. deno task report runs/resnet18-cifar10)";

/** `deno task report --help`. */
export function reportHelp(): string {
  return [
    USAGE,
    "",
    "Writes RUN/report.html: the run's charts, evaluation pictures (from RUN/eval*.json, see eval --out-json) and",
    "configuration in one file that needs no server or network. Lines the run's files could not give are listed.",
  ].join("\n");
}

/**
 * The run folders named on the command line, or "help".
 * @throws {UsageError} for a flag, or no folder named.
 */
export function parseReportArgs(argv: string[]): string[] | "help" {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { help: { type: "boolean", short: "h" } }, allowPositionals: true });
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`deno task report: ${e.message}`, e.flag);
    throw e;
  }
  if (parsed.values.help) return "help";
  if (parsed.positionals.length === 0) throw new UsageError("deno task report: name a run folder (RUN)", "RUN");
  return parsed.positionals;
}

/**
 * Checks that `run` is a run folder: one that holds `config.json` or `metrics.jsonl` (what `deno task train` writes
 * first), so that a report is never written into some other folder.
 * @throws {UsageError} naming the folder when it is missing or holds neither file.
 */
export async function checkRunFolder(run: string): Promise<void> {
  if (!(await statIfExists(run))?.isDirectory) throw new UsageError(`${run}: no such run folder`, "RUN");
  for (const file of ["config.json", "metrics.jsonl"]) {
    if ((await statIfExists(join(run, file)))?.isFile) return;
  }
  throw new UsageError(
    `${run}: not a run folder (it holds neither config.json nor metrics.jsonl, which deno task train writes)`,
    "RUN",
  );
}

if (import.meta.main) {
  await runTask(async () => {
    const runs = parseReportArgs(Deno.args);
    if (runs === "help") return void console.log(reportHelp());
    for (const run of runs) await checkRunFolder(run);
    for (const run of runs) {
      const { path, skipped } = await writeRunReport(run);
      for (const s of skipped) console.error(`warning: skipped ${s}`);
      console.log(`wrote ${path}`);
    }
  });
}
