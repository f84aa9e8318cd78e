/**
 * Data-parallel training over MPI (`mpirun -np 2`, Open MPI through Deno's FFI) on the software adapter, against a
 * single-process reference (`dp_child.ts reference`): the same weights as the mean of the two halves' gradients,
 * a bit-exact resume under 2 ranks, and a hung rank that stops the job within the collective timeout. Skipped
 * when `mpirun` or `libmpi` is absent (.ci/run installs Open MPI).
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { loadCheckpoint, loadWeights } from "../../io/checkpoint.ts";
import type { StateDict } from "../../io/host_tensor.ts";

const CHILD = new URL("./dp_child.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

async function mpiAvailable(): Promise<boolean> {
  try {
    const probe = await new Deno.Command("mpirun", { args: ["--version"], stdout: "null", stderr: "null" }).output();
    // ldconfig lives in /sbin, outside a user's PATH on Debian. (Not dlopen: the test process must not map libmpi.)
    const ldconfig = ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"];
    const libs = await Promise.all(
      ldconfig.map((cmd) =>
        new Deno.Command(cmd, { args: ["-p"], stderr: "null" }).output().then((o) => new TextDecoder().decode(o.stdout))
          .catch(() => "")
      ),
    );
    return probe.success && libs.some((l) => /libmpi\.so/.test(l));
  } catch {
    return false;
  }
}
const available = await mpiAvailable();

/** `mpirun -np 2 deno run -A dp_child.ts ARGS` (as root where needed); its exit code, output and wall time. */
async function mpirun(args: string[]): Promise<{ code: number; output: string; seconds: number }> {
  const started = performance.now();
  const { code, stdout, stderr } = await new Deno.Command("mpirun", {
    args: ["-np", "2", "--oversubscribe", "--allow-run-as-root", Deno.execPath(), "run", "-A", CHILD, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  return { code, output, seconds: (performance.now() - started) / 1000 };
}

async function single(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, ...args],
    cwd: ROOT,
  })
    .output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assertEquals(code, 0, output);
  return output;
}

/** Largest |a - b| / max(|b|) over each float tensor of `expected`; names must match. */
function worstRelative(found: StateDict, expected: StateDict): { name: string; error: number } {
  let worst = { name: "", error: 0 };
  for (const [name, e] of expected) {
    const f = found.get(name);
    assert(f, `${name} missing`);
    if (!(e.data instanceof Float32Array)) continue;
    const scale = Math.max(1e-6, ...e.data.map(Math.abs));
    const error = Math.max(...e.data.map((v, i) => Math.abs(v - (f.data[i] as number)))) / scale;
    if (error > worst.error) worst = { name, error };
  }
  return worst;
}

Deno.test({
  name: "mpirun -np 2: the mean of the halves' gradients, as one process computes it; resume under 2 ranks is exact, " +
    "under 1 refused",
  ignore: !available,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const [full] = await Promise.all([mpirun(["train", `${dir}/full`]), single(["reference", `${dir}/full`, "4"])]);
      assertEquals(full.code, 0, full.output);
      assert(/rank 1: done at step 4/.test(full.output), full.output);
      const trained = await loadCheckpoint(`${dir}/full/last.safetensors`);
      const { model: reference } = await loadWeights(`${dir}/full/reference.safetensors`);
      const worst = worstRelative(trained.model, reference);
      assert(worst.error <= 1e-5, `${worst.name} differs from the reference by ${worst.error} (relative)`);
      // Not vacuous: training moved the weights far beyond that tolerance.
      const mid = await loadCheckpoint(`${dir}/full/checkpoint-000000002.safetensors`);
      assert(worstRelative(mid.model, reference).error > 1e-3);
      assertEquals((trained.rng as { worldSize: number }).worldSize, 2);

      // Resume from the mid-epoch checkpoint (step 2) under 2 ranks: bit-exact weights, momentum and metrics.
      await Deno.mkdir(`${dir}/resumed`);
      await Deno.copyFile(
        `${dir}/full/checkpoint-000000002.safetensors`,
        `${dir}/resumed/checkpoint-000000002.safetensors`,
      );
      await Deno.mkdir(`${dir}/alone`);
      await Deno.copyFile(
        `${dir}/full/checkpoint-000000002.safetensors`,
        `${dir}/alone/checkpoint-000000002.safetensors`,
      );
      const [resumed, alone] = await Promise.all([
        mpirun(["train", `${dir}/resumed`, "--resume", "auto"]),
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", CHILD, "train", `${dir}/alone`, "--resume", "auto"],
          cwd: ROOT,
        })
          .output(),
      ]);
      assertEquals(resumed.code, 0, resumed.output);
      // One process may not continue what two started: the global batch would differ.
      const aloneOutput = new TextDecoder().decode(alone.stderr);
      assert(alone.code !== 0 && /written by a job of 2 processes, this job has 1/.test(aloneOutput), aloneOutput);
      const again = await loadCheckpoint(`${dir}/resumed/last.safetensors`);
      for (const part of ["model", "optimizer"] as const) {
        for (const [name, t] of trained[part]) assertEquals(again[part].get(name)?.data, t.data, `${part} ${name}`);
      }
      const metrics = async (run: string) =>
        (await Deno.readTextFile(`${dir}/${run}/metrics.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
      const [a, b] = [(await metrics("full"))[0], (await metrics("resumed"))[0]];
      assertEquals([b.train_loss, b.train_top1, b.test_loss], [a.train_loss, a.train_top1, a.test_loss]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "mpirun -np 2: a rank that hangs stops the other within the collective timeout, with a message",
  ignore: !available,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const run = await mpirun(["train", `${dir}/hang`, "--die-after", "1 hang", "--timeout", "8"]);
      assert(run.code !== 0, run.output);
      assert(
        // The library's advice names the field; the command line says the flag.
        /error: rank 0 of 2: the gradient all-reduce of step 2 did not complete within 8 s.* --collective-timeout/
          .test(run.output),
        run.output,
      );
      // The hung rank sleeps 600 s: a job that ends well before was aborted, by MPI_Abort (under srun a rank that
      // merely exits would not end the others). Open MPI's launcher says so, or sometimes fails to render that banner
      // ("ORTE_ERROR_LOG: Data unpack would read past end of buffer in … show_help.c").
      assert(run.seconds < 300, `the job took ${run.seconds} s`);
      assert(/MPI_ABORT was invoked on rank 0|show_help/.test(run.output), run.output);
      assert(!/returned\s+a non-zero exit code/.test(run.output), run.output); // a plain exit, not an abort
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "mpirun -np 2: a killed rank ends the job; ranks given different configurations all stop, naming the field",
  ignore: !available,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // One launcher at a time: two mpiruns starting together can collide on Open MPI's session folder ("File exists").
      const killed = await mpirun(["train", `${dir}/kill`, "--die-after", "1 kill", "--timeout", "60"]);
      const mismatch = await mpirun(["train", `${dir}/mismatch`, "--seed-by-rank"]);
      // Open MPI's launcher ends the survivor as soon as a rank dies (the timeout is for ranks that hang).
      assert(killed.code !== 0 && /rank 1: kill after step 1/.test(killed.output), killed.output);
      assert(!/rank 0: done/.test(killed.output), killed.output);
      assert(mismatch.code !== 0, mismatch.output);
      assert(
        /error: rank 1 of 2: the ranks of this job were given different configurations: rank 1 \(config hash [0-9a-f]+\) differ from rank 0 .*this rank \(1\) differs in seed 1 \(rank 0: 0\)/
          .test(mismatch.output),
        mismatch.output,
      );
      assert(
        /error: rank 0 of 2: the ranks of this job were given different configurations/.test(mismatch.output) ||
          /MPI_ABORT/.test(mismatch.output),
        mismatch.output,
      );
      assert(!(await Deno.stat(`${dir}/mismatch`).catch(() => null)), "nothing written before the check");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
