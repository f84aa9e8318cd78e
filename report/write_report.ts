/**
 * `RUN/report.html`: the self-contained report of one run folder (see `reportHtml`), written atomically so that a
 * browser that opens it during the write sees the previous report or the new one.
 * @module
 */
import { basename, join, resolve } from "node:path";
import { atomicWriteFile } from "../io/atomic_write.ts";
import { statIfExists } from "../io/stat_if_exists.ts";
import { readRunSnapshot } from "./run_snapshot.ts";
import { runDetail } from "./run_detail.ts";
import { reportHtml } from "./page_html.ts";

/** The report's file name inside the run folder. */
export const REPORT_FILE = "report.html";

/**
 * Writes `dir/report.html` from the run folder's files and returns its path and what was skipped while reading.
 * @throws {Error} when `dir` is not a folder.
 */
export async function writeRunReport(dir: string): Promise<{ path: string; skipped: string[] }> {
  const info = await statIfExists(dir);
  if (!info?.isDirectory) throw new Error(`${dir}: not a run folder (no such folder)`);
  const detail = runDetail(await readRunSnapshot(dir, basename(resolve(dir))));
  const path = join(dir, REPORT_FILE);
  await atomicWriteFile(path, new TextEncoder().encode(reportHtml(detail)));
  return { path, skipped: detail.skipped };
}
