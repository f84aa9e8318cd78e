/**
 * Runs the system `tar` with `args` for tests that need real archives (GNU/PAX/ustar headers as tar writes them), and
 * fails the test with tar's own message if it fails.
 * @module
 */
import { assertStrictEquals } from "./assert.ts";

/** `tar ...args`, asserting success. */
export async function tar(args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("tar", { args }).output();
  assertStrictEquals(code, 0, new TextDecoder().decode(stderr));
}
