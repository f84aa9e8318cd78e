/**
 * What `deno task train` prints on a terminal that has no size: Open MPI's mpirun gives its ranks such a
 * pseudo-terminal (0 columns), where the `\r`-redrawn bar came out as 20-column fragments on one line.
 * @module
 */
import { assert } from "../assert.ts";

const script = await new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" }).output()
  .then((o) => o.success, () => false);

Deno.test({
  name: "train on a pseudo-terminal of 0 columns (mpirun's) prints plain progress lines, not a cut bar",
  ignore: !script, // util-linux's `script` makes the pseudo-terminal
  fn: async () => {
    const out = await Deno.makeTempDir();
    try {
      const train = [
        Deno.execPath(),
        "run",
        "-A",
        new URL("../../tasks/train.ts", import.meta.url).pathname,
        ...["--dataset", "synthetic", "--width", "2", "--epochs", "1", "--batch-size", "64", "--log-every", "4"],
        ...["--out", out],
      ].map((a) => `'${a}'`).join(" ");
      const result = await new Deno.Command("script", {
        args: ["-q", "-e", "-c", `stty cols 0 rows 0; ${train}`, "/dev/null"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(result.stdout);
      assert(result.success, `train failed (exit ${result.code}):\n${text}`);
      assert(/^epoch 1\/1 batch 4\/16 loss \S+ acc \S+ lr \S+ \d+ img\/s ETA \S+\r?$/m.test(text), text);
      assert(!/epoch \d+\/\d+ \[/.test(text), `a bar was drawn on a terminal without a size:\n${text}`);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
