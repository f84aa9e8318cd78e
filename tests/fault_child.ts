/**
 * The training process the fault-injection harness (`fault_injection.ts`) kills: a small synthetic run in `OUT`,
 * which kills itself with SIGKILL at the moment `KILL` names (or at no moment when `KILL` is "none"):
 *
 * - `step:N`   right after global step N has been dispatched (mid-epoch, GPU work in flight);
 * - `eval:E`   a few milliseconds into the evaluation that ends epoch E;
 * - `save:K:B` after B bytes of the K-th checkpoint file written (0-based), mid-write;
 * - `rename:K` right after the K-th checkpoint file was renamed into place, before its folder is fsynced;
 * - `time:MS`  MS milliseconds after the start, wherever the run is then.
 *
 *     deno run -A tests/fault_child.ts OUT KILL [--resume]
 *
 * Prints `phase PHASE` to stdout just before killing itself, so the harness can count kills per phase.
 * @module
 */
import { registerFastKernels } from "../kernels/register.ts";
import { initWebGPU } from "../kernels/webgpu_backend.ts";
import { parseTrainArgs } from "../tasks/train_flags.ts";
import { train } from "../train/trainer.ts";

/** The run every trial repeats: 2 epochs of 4 steps, validation split, a mid-epoch checkpoint every 3 steps. */
export const FAULT_RUN_FLAGS = [
  "--dataset=synthetic",
  "--width=2",
  "--batch-size=16",
  "--epochs=2",
  "--val-split=32",
  "--log-every=1",
  "--checkpoint-every=3",
  "--keep=2",
];
/** Its data: 96 synthetic training images (64 after the validation split), 32 test images, inline decoding. */
export const FAULT_RUN_DATA = { syntheticTrain: 96, syntheticTest: 32, workers: 0 };

function die(phase: string): never {
  console.log(`phase ${phase}`);
  Deno.kill(Deno.pid, "SIGKILL");
  throw new Error("unreachable");
}

if (import.meta.main) {
  const [out, kill, ...rest] = Deno.args;
  const [phase, a, b] = kill.split(":");
  const n = Number(a);
  const config = parseTrainArgs([
    ...FAULT_RUN_FLAGS,
    `--out=${out}`,
    ...(rest.includes("--resume") ? ["--resume=auto"] : []),
  ]);
  if (config === "help") throw new Error("unreachable");
  if (phase === "time") setTimeout(() => die("time"), n);
  if (phase === "save" || phase === "rename") {
    // Count checkpoint files as they are opened for writing; kill mid-write (save) or after the rename (rename).
    const open = Deno.open, write = Deno.FsFile.prototype.write, rename = Deno.rename;
    const files = new WeakMap<Deno.FsFile, { index: number; written: number }>();
    let opened = 0, renamed = 0;
    const deno = Deno as { open: typeof Deno.open; rename: typeof Deno.rename };
    deno.open = async (path, options) => {
      const file = await open(path, options);
      if (/\.safetensors\.tmp-/.test(String(path))) files.set(file, { index: opened++, written: 0 });
      return file;
    };
    Deno.FsFile.prototype.write = async function (this: Deno.FsFile, p: Uint8Array) {
      const f = files.get(this);
      if (phase === "save" && f?.index === n) {
        const room = Number(b) - f.written;
        if (room <= 0) die("save");
        const done = await write.call(this, p.subarray(0, Math.min(room, p.length)));
        f.written += done;
        return done;
      }
      return write.call(this, p);
    };
    deno.rename = async (from, to) => {
      await rename(from, to);
      if (phase === "rename" && /\.safetensors\.tmp-/.test(String(from)) && renamed++ === n) die("rename");
    };
  }
  await initWebGPU();
  registerFastKernels();
  await train(config, {
    data: FAULT_RUN_DATA,
    progress: (p) => {
      if (phase === "step" && p.globalStep === n) die("step");
      if (phase === "eval" && p.batch === p.batches && p.epoch === n) setTimeout(() => die("eval"), 5);
    },
  });
  console.log("finished");
}
