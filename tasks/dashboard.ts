/**
 * `deno task dashboard [--runs runs] [--port 8080] [--host 127.0.0.1]`: a local web page of the runs under a folder
 * that updates while they train (see report/dashboard_server.ts for the page and its JSON API). It binds to the
 * loopback address unless `--host` says otherwise: the API reads the run folders and nothing else authenticates.
 * @module
 */
import { parseArgs, runTask, UsageError } from "./args.ts";
import { DashboardServer } from "../report/dashboard_server.ts";
import { servePort } from "./serve_port.ts";

/** What the command line sets. */
export interface DashboardArgs {
  runs: string;
  port: number;
  host: string;
}

const USAGE = "Usage: deno task dashboard [--runs runs] [--port 8080] [--host 127.0.0.1]";

/** `deno task dashboard --help`. */
export function dashboardHelp(): string {
  return [
    USAGE,
    "",
    "Serves a live page of the runs under a folder: a table of runs, their loss, top-1, learning rate and images/s per",
    "epoch (overlaid for several), a running epoch's progress and the evaluation pictures of eval --out-json; a JSON",
    "API at /api/runs and /api/runs/NAME/metrics.",
    "",
    "Flags:",
    "  --runs PATH    the runs folder (default: runs)",
    "  --port N       TCP port; 0 picks a free one (default: 8080)",
    "  --host ADDR    address to listen on; anything but loopback exposes the runs to the network (default: 127.0.0.1)",
    "  --help         show this help",
  ].join("\n");
}

/**
 * Parses the flags of `deno task dashboard`, or returns "help".
 * @throws {UsageError} naming the flag for an unknown flag or a bad value.
 */
export function parseDashboardArgs(argv: string[]): DashboardArgs | "help" {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        runs: { type: "string", default: "runs" },
        port: { type: "string", default: "8080" },
        host: { type: "string", default: "127.0.0.1" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`deno task dashboard: ${e.message}`, e.flag);
    throw e;
  }
  if (values.help) return "help";
  if (values.runs === "") throw new UsageError("--runs needs a non-empty value", "--runs");
  if (values.host === "") throw new UsageError("--host needs a non-empty value", "--host");
  const port = Number(values.port);
  if (!/^\d{1,5}$/.test(values.port!) || port > 65535) {
    throw new UsageError(`--port expects an integer from 0 to 65535, got "${values.port}"`, "--port");
  }
  return { runs: values.runs!, port, host: values.host! };
}

if (import.meta.main) {
  await runTask(async () => {
    const args = parseDashboardArgs(Deno.args);
    if (args === "help") return void console.log(dashboardHelp());
    const loopback = ["127.0.0.1", "localhost", "::1"].includes(args.host);
    const dashboard = new DashboardServer({ root: args.runs, loopbackOnly: loopback });
    const server = servePort(
      {
        hostname: args.host,
        port: args.port,
        onListen: ({ hostname, port }) => {
          const host = hostname.includes(":") ? `[${hostname}]` : hostname;
          console.log(`dashboard of ${args.runs}/ at http://${host}:${port}/ (Ctrl-C to stop)`);
        },
      },
      dashboard.handle,
      "dashboard",
    );
    const stop = () => {
      dashboard.close();
      server.shutdown();
    };
    Deno.addSignalListener("SIGINT", stop);
    if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
    await server.finished;
  });
}
