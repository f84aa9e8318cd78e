import { assertEquals, throws } from "../assert.ts";
import { ConfigError, literal } from "../../train/config_error.ts";
import { checkResumeConfig, resolveTrainConfig } from "../../train/config.ts";
import { usageErrorFrom } from "../../tasks/args.ts";

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
