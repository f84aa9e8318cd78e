/**
 * Builds the page's script: `deno bundle --platform browser` of web/app.ts (the library's kernels, models and
 * safetensors reader with tfjs, one file), run with the Deno that runs us.
 * @module
 */
import { fileURLToPath as fromFileUrl } from "node:url";

/** The bundle's JavaScript. Takes seconds (about 10 s on a loaded 2-core machine). */
export async function bundleWebApp(): Promise<string> {
  const root = fromFileUrl(new URL("..", import.meta.url)); // a path, spaces and all (pathname is %-encoded)
  const dir = await Deno.makeTempDir({ prefix: "demo_bundle_" });
  try {
    const out = `${dir}/app.js`;
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", "-o", out, `${root}web/app.ts`],
      cwd: root,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`deno bundle of web/app.ts failed (exit ${code}):\n${new TextDecoder().decode(stderr)}`);
    }
    return await Deno.readTextFile(out);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
