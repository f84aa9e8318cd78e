/**
 * `Deno.serve` for the tasks that serve pages on `--port` (dashboard, demo), with a port that is taken said as the
 * flag's problem: `--port 8765: address already in use (another dashboard? choose another --port)` where Deno says
 * `Address already in use (os error 98)`.
 * @module
 */

/**
 * Serves `handler` on `options.hostname`:`options.port`; `task` names the server in the error ("dashboard").
 * @throws {Error} naming `--port` and its value when the port is taken.
 */
export function servePort(
  options: Deno.ServeTcpOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  task: string,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve(options, handler);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(`--port ${options.port}: address already in use (another ${task}? choose another --port)`);
    }
    throw e;
  }
}
