/**
 * `deno task demo [--port 8080] [--files DIR]`: bundles the browser build of the library (web/bundle.ts) and serves
 * the demo page on 127.0.0.1: classify images with an exported checkpoint, and `/?selftest`, the kernel self-test on
 * the browser's WebGPU.
 * @module
 */
import { parseArgs, runTask, UsageError } from "./args.ts";
import { bundleWebApp } from "../web/bundle.ts";
import { DemoServer } from "../web/demo_server.ts";
import { servePort } from "./serve_port.ts";

/** What the command line sets. */
export interface DemoArgs {
  port: number;
  files?: string;
}

const USAGE = "Usage: deno task demo [--port 8080] [--files DIR]";

/** `deno task demo --help`. */
export function demoHelp(): string {
  return [
    USAGE,
    "",
    "Serves the demo page on http://127.0.0.1:PORT/ (WebGPU in the browser: Chrome/Chromium, or Firefox/Safari with",
    "WebGPU enabled). /?selftest runs every kernel correctness case in the page and writes 'N passed, M failed'.",
    "",
    "Flags:",
    "  --port N     TCP port; 0 picks a free one (default: 8080)",
    "  --files DIR  a folder served under /files/ (e.g. exported checkpoints for ?checkpoint=/files/NAME)",
    "  --help       show this help",
  ].join("\n");
}

/**
 * Parses the flags of `deno task demo`, or returns "help".
 * @throws {UsageError} naming the flag for an unknown flag or a bad value.
 */
export function parseDemoArgs(argv: string[]): DemoArgs | "help" {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        port: { type: "string", default: "8080" },
        files: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`deno task demo: ${e.message}`, e.flag);
    throw e;
  }
  if (values.help) return "help";
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw new UsageError(`--port must be an integer from 0 to 65535, got ${JSON.stringify(values.port)}`, "--port");
  }
  if (values.files === "") throw new UsageError("--files needs a non-empty value", "--files");
  return { port, files: values.files };
}

if (import.meta.main) {
  await runTask(async () => {
    const args = parseDemoArgs(Deno.args);
    if (args === "help") {
      console.log(demoHelp());
      return;
    }
    // The port first, so that a taken one is said before the bundling (seconds); requests wait for the page.
    const demo = Promise.withResolvers<DemoServer>();
    const server = servePort(
      { hostname: "127.0.0.1", port: args.port, onListen: () => {} },
      async (request) => (await demo.promise).handle(request),
      "demo",
    );
    console.log("bundling the page's script (deno bundle --platform browser)...");
    demo.resolve(new DemoServer({ script: await bundleWebApp(), files: args.files }));
    console.log(`demo on http://127.0.0.1:${server.addr.port}/  (self-test: /?selftest)`);
    await server.finished;
  });
}
