import { assertEquals, throws } from "../assert.ts";
import { ConfigError, literal } from "../../io/config_error.ts";
import { checkResumeConfig, resolveTrainConfig } from "../../train/config.ts";
import { runTask, usageErrorFrom } from "../../tasks/args.ts";
import { NonFiniteLossError } from "../../train/trainer.ts";

Deno.test("ConfigError: {field} names a field the caller's way; literal() text, braces included, is shown as it is", () => {
  const e = new ConfigError("batchSize", `{batchSize} 64 exceeds ${literal("runs/{batchSize}/{x")} {{`);
  // `{{` written directly is a literal "{" too; an unescaped one would have read as a field.
  assertEquals(e.message, "batchSize 64 exceeds runs/{batchSize}/{x {");
  assertEquals(e.describe((f) => `<${f}>`), "<batchSize> 64 exceeds runs/{batchSize}/{x {");
});

Deno.test("a checkpoint path or a value holding {word} stays as written when the error is said as flags", () => {
  const saved = resolveTrainConfig({ dataset: "synthetic", out: "runs/{epochs}" });
  const now = resolveTrainConfig({ dataset: "synthetic", out: "runs/{epochs}", epochs: 7 });
  throws(
    () => checkResumeConfig(saved, now, "runs/{epochs}/last.safetensors"),
    (e: unknown) => {
      const said = usageErrorFrom(e as ConfigError).message;
      assertEquals(
        said.startsWith("runs/{epochs}/last.safetensors was trained with another configuration"),
        true,
        said,
      );
      assertEquals(said.includes("--epochs 3 in the checkpoint, 7 now"), true, said);
      return true;
    },
  );
});

Deno.test("a library error's advice names fields; the command line says them as flags, exit status 1", async () => {
  const e = new NonFiniteLossError(6, 2, NaN);
  assertEquals(e.message.includes("Lower lr, add clipGradNorm, or check the data."), true, e.message);
  const said: string[] = [];
  const codes: number[] = [];
  const error = console.error;
  console.error = (m: string) => said.push(m);
  try {
    await runTask(() => {
      throw e;
    }, { exit: ((code: number) => void codes.push(code)) as (code: number) => never });
  } finally {
    console.error = error;
  }
  assertEquals(codes, [1]);
  assertEquals(said.length, 1);
  assertEquals(said[0].startsWith("error: The training loss became NaN at or before global step 6"), true, said[0]);
  assertEquals(said[0].endsWith("Lower --lr, add --clip-grad-norm, or check the data."), true, said[0]);
});
