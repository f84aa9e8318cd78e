/**
 * The runs under a runs folder, as the dashboard serves them: a scan of the folder's run folders, each read only when
 * its files changed since the last look (see `runVersion`), so polling many runs every second stays cheap.
 * @module
 */
import { join } from "node:path";
import { isRunName } from "./run_name.ts";
import { readRunSnapshot, type RunSnapshot, runVersion } from "./run_snapshot.ts";
import { type RunSummary, summarizeRun } from "./run_summary.ts";
import { type RunDetail, runDetail } from "./run_detail.ts";

/** The runs table: the runs found and a message for each entry of the folder that is not shown. */
export interface RunList {
  root: string;
  runs: RunSummary[];
  skipped: string[];
}

/** Run folders under one runs folder, read on demand and cached by version. */
export class RunCatalog {
  /** The runs folder. */
  readonly root: string;
  #cache = new Map<string, RunSnapshot>();

  constructor(root: string) {
    this.root = root.replace(/\/+$/, "") || "/";
  }

  /** Every run folder directly under the root (newest first), and what was skipped. */
  async list(): Promise<RunList> {
    const skipped: string[] = [];
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(this.root)) {
        const path = join(this.root, e.name);
        if (e.isSymlink) skipped.push(`${path}: a symbolic link, not followed`);
        else if (!e.isDirectory) continue; // files beside the runs (a README, an archive) are not runs
        else if (!isRunName(e.name)) skipped.push(`${path}: a folder name with unusual characters, not served`);
        else names.push(e.name);
      }
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "no such folder (no run has been written yet?)" : String(e);
      return { root: this.root, runs: [], skipped: [`${this.root}: ${why}`] };
    }
    const runs: RunSummary[] = [];
    for (const name of names.sort()) {
      const snapshot = await this.#snapshot(name);
      if (snapshot) runs.push(summarizeRun(snapshot));
      else skipped.push(`${join(this.root, name)}: no config.json, metrics.jsonl or run.lock (empty, or not a run)`);
    }
    runs.sort((a, b) => (b.updated ?? "").localeCompare(a.updated ?? "") || a.name.localeCompare(b.name));
    this.#forget(new Set(names));
    return { root: this.root, runs, skipped };
  }

  /**
   * One run in full; null when `name` is not a plain folder name (see `isRunName`), is not a real folder directly
   * under the root (a symbolic link is refused), or holds no run files.
   */
  async detail(name: string): Promise<RunDetail | null> {
    if (!isRunName(name)) return null;
    try {
      const info = await Deno.lstat(join(this.root, name));
      if (!info.isDirectory || info.isSymlink) return null;
    } catch {
      return null;
    }
    const snapshot = await this.#snapshot(name);
    return snapshot ? runDetail(snapshot) : null;
  }

  /** The snapshot of run `name` (a checked name), re-read when its version changed; null when it has no run files. */
  async #snapshot(name: string): Promise<RunSnapshot | null> {
    const dir = join(this.root, name);
    const { version, empty } = await runVersion(dir);
    if (empty) {
      this.#cache.delete(name);
      return null;
    }
    const cached = this.#cache.get(name);
    if (cached?.version === version) return cached;
    const snapshot = await readRunSnapshot(dir, name);
    this.#cache.set(name, snapshot);
    return snapshot;
  }

  #forget(present: Set<string>) {
    for (const name of this.#cache.keys()) if (!present.has(name)) this.#cache.delete(name);
  }
}
