/**
 * `deno task train --arch resnet18 --dataset cifar10 [flags]`: trains (or resumes) a ResNet on the GPU through
 * WebGPU. `--help` lists every flag with its default.
 *
 * Besides the trainer's logs, the run folder gets `progress.json` (the live progress line, rewritten atomically at
 * most every 2 s, for the dashboard) and, at the end, `report.html` (the run's charts in one file).
 * @module
 */
import { flagOf, runTask, UsageError } from "./args.ts";
import { statIfExists } from "../io/stat_if_exists.ts";
import { releaseOwnLock } from "../io/run_lock.ts";
import { isFolderDataset } from "../data/folder_datasets.ts";
import { registerFastKernels } from "../kernels/register.ts";
import { initWebGPU } from "../kernels/webgpu_backend.ts";
import { formatEpochSummary, formatProgress } from "./progress.ts";
import { parseTrainArgs, trainHelp } from "./train_flags.ts";
import { train } from "../train/trainer.ts";
import { checkRunFolder } from "../train/run_folder.ts";
import { progressWriter } from "../report/run_progress.ts";
import { LAST_CHECKPOINT, listStepCheckpoints } from "../io/checkpoint_dir.ts";
import { join } from "node:path";
import { writeRunReport } from "../report/write_report.ts";
import { openCollective } from "../dist/open_collective.ts";
import { type Collective, LocalCollective } from "../dist/collective.ts";
import type { TaskOptions } from "./args.ts";

if (import.meta.main) {
  let collective: Collective = new LocalCollective();
  await runTask(async () => {
    const config = parseTrainArgs(Deno.args);
    if (config === "help") return void console.log(trainHelp());
    // Named files first, before the GPU and the data: a typo is a usage error naming the flag.
    for (const [flag, path] of [["--resume", config.resume], ["--init", config.init]] as const) {
      if (path === null || (flag === "--resume" && path === "auto")) continue;
      if (!(await statIfExists(path))?.isFile) {
        throw new UsageError(
          `${flag} ${path}: no such file (expected ${flag === "--resume" ? "auto or " : ""}a checkpoint path)`,
          flag,
        );
      }
    }
    // A folder or ImageNet dataset reads what is there (CIFAR downloads into --data-dir): a missing one is a typo.
    if (isFolderDataset(config.dataset) && config.dataDir !== null) {
      if (!(await statIfExists(config.dataDir))) {
        throw new UsageError(
          `--data-dir ${config.dataDir}: no such folder or archive (expected the ${config.dataset} dataset's files)`,
          "--data-dir",
        );
      }
    }
    // Under mpirun/srun: this process is one rank of a data-parallel job (MPI is loaded only then).
    collective = openCollective({ timeoutSeconds: config.collectiveTimeout });
    // Ctrl-C: say where the run stopped and what to continue from, then exit 130 as the shell expects. No save starts
    // here: checkpoints are written atomically, so the newest one on disk is whole (a half-written temporary file
    // is removed by the next run's first save).
    let at: { epoch: number; globalStep: number } | null = null;
    let tty = false;
    let flushProgress = () => Promise.resolve();
    Deno.addSignalListener("SIGINT", async () => {
      if (collective.rank === 0) {
        await flushProgress(); // no progress.json write cut short
        const line = interruptedMessage(at, await latestCheckpoint(config.out));
        console.error(tty ? `\n${line}` : line); // after a bar redrawn in place, on a line of its own
        // train()'s own release in its `finally` never runs after Deno.exit: the next run would take it over, warning.
        await releaseOwnLock(config.out);
      }
      Deno.exit(130);
    });
    // A folder that holds a run and no --resume: said before the GPU starts (train() checks again under the lock).
    if (collective.rank === 0) await checkRunFolder(config);
    const adapter = await initWebGPU();
    registerFastKernels();
    // Rank 0 alone prints and writes the run's files (the trainer calls no hook on the others).
    if (collective.rank !== 0) {
      await train(config, { collective });
      return collective.finalize();
    }
    if (collective.size > 1) console.log(`data parallel: ${collective.size} ranks over ${collective.description}`);
    console.log(
      `WebGPU adapter: ${adapter.name}${
        adapter.isFallbackAdapter ? " (software fallback: slow, for tests only)" : ""
      }` +
        ` [${adapter.features.join(", ")}]`,
    );
    console.log(`run folder: ${config.out}`);
    // Open MPI's mpirun gives each rank a pseudo-terminal of 0 columns: a bar redrawn there came out as a row of cut
    // fragments, so a terminal without a size gets the plain lines of a log.
    const columns = Deno.stdout.isTerminal() ? terminalColumns() : 0;
    tty = columns > 0;
    const encoder = new TextEncoder();
    let progressFailed = false;
    const progressFile = progressWriter(config.out, {
      onError: (e) => {
        // A watcher's file: say it once and keep training.
        if (!progressFailed) console.error(`warning: progress.json not written (${e.message}); training goes on`);
        progressFailed = true;
      },
    });
    flushProgress = () => progressFile.flush();
    let result;
    try {
      result = await train(config, {
        collective,
        log: (m) => console.log(tty ? `\r${m}` : m),
        nameOf: flagOf,
        position: (p) => at = p,
        progress: (p) => {
          progressFile.update(p);
          const line = formatProgress(p, { tty, width: columns });
          if (tty) Deno.stdout.writeSync(encoder.encode(line));
          else console.log(line);
        },
        epoch: (r, isBest) => {
          const split = (loss?: number, top1?: number, top5?: number) =>
            loss === undefined ? undefined : { loss, top1: top1!, top5: top5! };
          const line = formatEpochSummary({
            epoch: r.epoch,
            epochs: config.epochs,
            trainLoss: r.train_loss,
            trainTop1: r.train_top1,
            val: split(r.val_loss, r.val_top1, r.val_top5),
            test: split(r.test_loss, r.test_top1, r.test_top5),
            emaVal: split(r.ema_val_loss, r.ema_val_top1, r.ema_val_top5),
            emaTest: split(r.ema_test_loss, r.ema_test_top1, r.ema_test_top5),
            lr: r.lr,
            seconds: r.time,
            imagesPerSecond: r.images_per_second,
            best: isBest,
          });
          console.log(tty ? `\r${line}` : line);
        },
      });
    } finally {
      await progressFile.flush(); // no write left half-done when the process exits
    }
    try {
      const report = await writeRunReport(config.out);
      console.log(`report: ${report.path}`);
    } catch (e) {
      console.error(`warning: report.html not written: ${(e as Error).message}`);
    }
    const last = result.epochs.at(-1);
    if (last?.test_top1 !== undefined) {
      console.log(
        `done: ${result.globalStep} steps; final test top-1 ${(last.test_top1 * 100).toFixed(2)}%` +
          (result.lastCheckpoint ? `; checkpoint ${result.lastCheckpoint}` : ""),
      );
    } else {
      const epochs = `${config.epochs} epoch${config.epochs === 1 ? "" : "s"}`;
      console.log(`nothing to do: the run in ${config.out} already finished ${epochs}`);
    }
    collective.finalize();
  }, rankTaskOptions(() => collective));
}

/**
 * {@linkcode runTask}'s options for one rank of a data-parallel job: an error names the rank and ends every rank at
 * once (MPI_Abort), since a rank that stopped alone would leave the others waiting. Nothing changes for one process.
 */
export function rankTaskOptions(collective: () => Collective): TaskOptions {
  const several = () => collective().size > 1;
  return {
    errorPrefix: () => several() ? `rank ${collective().rank} of ${collective().size}: ` : "",
    exit: (code) => several() ? collective().abort(code) : Deno.exit(code),
  };
}

/**
 * The line Ctrl-C leaves: where training stood (`at`: null before it started) and the checkpoint `--resume auto`
 * continues from, or that there is none yet.
 */
export function interruptedMessage(at: { epoch: number; globalStep: number } | null, checkpoint?: string): string {
  const where = at ? `interrupted at epoch ${at.epoch}, step ${at.globalStep}` : "interrupted before training started";
  return checkpoint
    ? `${where}; the latest checkpoint is ${checkpoint} (continue with --resume auto)`
    : `${where}; no checkpoint was written yet (--resume auto starts the run anew)`;
}

/**
 * The newest checkpoint of run folder `out`, the one `--resume auto` continues from: the newest step file, else
 * `last.safetensors` (all there is with `--keep 0`); undefined when there is none.
 */
export async function latestCheckpoint(out: string): Promise<string | undefined> {
  const newest = (await listStepCheckpoints(out)).at(-1)?.path;
  if (newest !== undefined) return newest;
  const last = join(out, LAST_CHECKPOINT);
  return (await statIfExists(last))?.isFile ? last : undefined;
}

/** The terminal's columns, 0 when it has no size (or says none). */
function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 0;
  }
}
