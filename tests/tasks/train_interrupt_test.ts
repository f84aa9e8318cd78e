/**
 * Ctrl-C during `deno task train`: one line says where the run stopped and which checkpoint `--resume auto` continues
 * from, and the process exits 130 as after any interrupt.
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { interruptedMessage, latestCheckpoint } from "../../tasks/train.ts";
import { loadCheckpoint } from "../../io/checkpoint.ts";

Deno.test("the interrupt line names the latest checkpoint, or says there is none", async () => {
  assertEquals(
    interruptedMessage({ epoch: 2, globalStep: 57 }, "runs/x/checkpoint-000000040.safetensors"),
    "interrupted at epoch 2, step 57; the latest checkpoint is runs/x/checkpoint-000000040.safetensors (continue " +
      "with --resume auto)",
  );
  assertEquals(
    interruptedMessage({ epoch: 1, globalStep: 3 }),
    "interrupted at epoch 1, step 3; no checkpoint was written yet (--resume auto starts the run anew)",
  );
  assertEquals(
    interruptedMessage(null),
    "interrupted before training started; no checkpoint was written yet (--resume auto starts the run anew)",
  );
  // The newest step file (what --resume auto takes), else last.safetensors (--keep 0 keeps no step file).
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(await latestCheckpoint(`${dir}/none`), undefined);
    assertEquals(await latestCheckpoint(dir), undefined);
    await Deno.writeFile(`${dir}/last.safetensors`, new Uint8Array(0));
    assertEquals(await latestCheckpoint(dir), `${dir}/last.safetensors`);
    for (const step of ["000000004", "000000012", "000000008"]) {
      await Deno.writeFile(`${dir}/checkpoint-${step}.safetensors`, new Uint8Array(0));
    }
    assertEquals(await latestCheckpoint(dir), `${dir}/checkpoint-000000012.safetensors`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "Ctrl-C mid-epoch prints where the run stopped and its latest checkpoint, and exits 130",
  ignore: Deno.build.os === "windows", // no SIGINT to send there
  fn: async () => {
    const out = await Deno.makeTempDir();
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          ...["run", "-A", new URL("../../tasks/train.ts", import.meta.url).pathname],
          ...["--dataset", "synthetic", "--width", "2", "--epochs", "2", "--batch-size", "64"],
          ...["--log-every", "1", "--checkpoint-every", "2", "--out", out],
        ],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).spawn();
      const stderr = new Response(child.stderr).text();
      // Interrupt once step 5 of epoch 1 is reported: the checkpoints of steps 2 and 4 are written by then.
      let stdout = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        stdout += chunk;
        if (/^epoch 1\/2 batch 5\/16 /m.test(stdout)) {
          child.kill("SIGINT");
          break;
        }
      }
      const status = await child.status;
      const text = await stderr;
      assertEquals([status.code, status.signal], [130, null], `${text}\n${stdout}`);
      const said =
        /^interrupted at epoch 1, step (\d+); the latest checkpoint is (\S+) \(continue with --resume auto\)\n$/
          .exec(text);
      assert(said, text);
      const [step, path] = [Number(said[1]), said[2]];
      assert(step >= 5 && step < 16, text);
      // The checkpoint named is whole and the newest one: a save of step 6 or later may have finished meanwhile.
      const state = await loadCheckpoint(path);
      assert(path.startsWith(`${out}/checkpoint-`) && state.globalStep >= 4 && state.globalStep <= step, text);
      assertEquals(path, await latestCheckpoint(out));
      // The dashboard's progress.json, if written yet, was not cut short by the exit.
      const names = [...Deno.readDirSync(out)].map((e) => e.name);
      assert(!names.some((n) => n.startsWith("progress.json.tmp-")), names.join());
      assert(!names.includes("run.lock"), `the lock stays after Ctrl-C: ${names.join()}`);
      if (names.includes("progress.json")) JSON.parse(await Deno.readTextFile(`${out}/progress.json`));
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
