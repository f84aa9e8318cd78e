/**
 * The dashboard's HTTP side as a plain `Request -> Response` function (the task `tasks/dashboard.ts` hands it to
 * `Deno.serve`; tests call it directly): the page, its assets, a JSON API other tools can read, and a server-sent
 * event stream that tells the page when a run's files changed.
 *
 * | path                       | answer                                                                   |
 * | -------------------------- | ------------------------------------------------------------------------ |
 * | `/`                        | the dashboard page (`?run=NAME&run=...` selects runs)                    |
 * | `/assets/NAME`             | uPlot, our script and styles                                             |
 * | `/api/runs`                | `RunList`: every run's summary, and what was skipped                     |
 * | `/api/runs/NAME`           | `RunDetail`: everything the charts of one run are drawn from             |
 * | `/api/runs/NAME/metrics`   | `{ name, records, skipped }`: the readable lines of `metrics.jsonl`      |
 * | `/api/events`              | `text/event-stream`: a `runs` event with the `RunList` whenever it changes |
 * | `/report/NAME`             | the run's report page, as `deno task report` writes it                   |
 *
 * A run is named by one path segment, checked after percent-decoding (`isRunName`): `/api/runs/../../etc`,
 * `/api/runs/..%2F..%2Fetc` and the like are refused with 400 before any file is touched.
 * @module
 */
import { RunCatalog } from "./run_catalog.ts";
import { isRunName } from "./run_name.ts";
import { ASSETS } from "./assets.ts";
import { dashboardHtml, reportHtml } from "./page_html.ts";

/** Options of {@linkcode DashboardServer}. */
export interface DashboardOptions {
  /** The runs folder. */
  root: string;
  /** How often an event stream looks at the run folders, in milliseconds (default 1000). */
  pollMs?: number;
  /**
   * Answer only requests addressed to a loopback name (`Host: 127.0.0.1`, `localhost`, `[::1]`), as a server bound to
   * the loopback interface should: otherwise a web page on another site could read the runs through DNS rebinding
   * (its name re-pointed at 127.0.0.1). Default true; false when the server is deliberately bound to other addresses.
   */
  loopbackOnly?: boolean;
}

const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "[::1]"]);

const JSON_TYPE = "application/json; charset=utf-8";

/** Serves one runs folder; see the module documentation. */
export class DashboardServer {
  readonly catalog: RunCatalog;
  readonly #pollMs: number;
  readonly #loopbackOnly: boolean;
  /** Open event streams, ended by {@linkcode close} (a server's shutdown waits for every open response). */
  readonly #streams = new Set<() => void>();

  constructor(options: DashboardOptions) {
    this.catalog = new RunCatalog(options.root);
    this.#pollMs = options.pollMs ?? 1000;
    this.#loopbackOnly = options.loopbackOnly ?? true;
  }

  /** Answers one request. */
  handle = async (request: Request): Promise<Response> => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return json({ error: `${request.method} not allowed` }, 405, { allow: "GET, HEAD" });
    }
    const host = new URL(request.url).hostname; // Deno.serve builds the URL from the Host header
    if (this.#loopbackOnly && !LOOPBACK_NAMES.has(host)) {
      return json(
        {
          error: `requests to ${host} are refused: a dashboard on a loopback address answers loopback names only, ` +
            "against DNS rebinding; bind it to another address to serve other names",
        },
        403,
      );
    }
    // Split the raw path before decoding, so an encoded "/" stays inside its segment and is refused there.
    let parts: string[];
    try {
      parts = new URL(request.url).pathname.split("/").slice(1).map(decodeURIComponent);
    } catch {
      return json({ error: "malformed percent-encoding in the path" }, 400);
    }
    try {
      return await this.#route(parts);
    } catch (e) {
      return json({ error: e instanceof Error ? e.message : String(e) }, 500);
    }
  };

  async #route(parts: string[]): Promise<Response> {
    const [first, second, name, rest, ...more] = parts;
    if (parts.length === 1 && (first === "" || first === "index.html")) return html(dashboardHtml());
    if (first === "assets" && parts.length === 2) {
      const asset = Object.hasOwn(ASSETS, second) ? ASSETS[second] : undefined;
      return asset ? text(asset.text, asset.type) : json({ error: `no asset ${second}` }, 404);
    }
    if (first === "report" && parts.length === 2) {
      if (!isRunName(second)) return badName(second);
      const detail = await this.catalog.detail(second);
      return detail ? html(reportHtml(detail)) : noRun(second);
    }
    if (first !== "api") return json({ error: "not found" }, 404);
    if (second === "events" && parts.length === 2) return this.#events();
    if (second !== "runs") return json({ error: "not found" }, 404);
    if (parts.length === 2 || (parts.length === 3 && name === "")) return json(await this.catalog.list());
    if (!isRunName(name)) return badName(name);
    if (more.length > 0 || (rest !== undefined && rest !== "metrics")) return json({ error: "not found" }, 404);
    const detail = await this.catalog.detail(name);
    if (!detail) return noRun(name);
    if (rest === "metrics") return json({ name, records: detail.metrics, skipped: detail.skipped });
    return json(detail);
  }

  /** A `runs` event now and whenever the list changes (looked at every pollMs), a comment every 15 s otherwise. */
  #events(): Response {
    const encoder = new TextEncoder();
    const streams = this.#streams;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    let last = "";
    let quiet = 0;
    /** Stops polling; a client that went away cancelled the stream already, else it is closed here. */
    let finish = (_cancelled: boolean) => {};
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const stop = () => finish(false);
        finish = (cancelled) => {
          if (closed) return;
          closed = true;
          clearTimeout(timer);
          streams.delete(stop);
          if (!cancelled) controller.close();
        };
        streams.add(stop);
        controller.enqueue(encoder.encode("retry: 1000\n\n"));
        const tick = async () => {
          if (closed) return;
          try {
            const list = JSON.stringify(await this.catalog.list());
            if (closed) return;
            if (list !== last) {
              last = list;
              quiet = 0;
              controller.enqueue(encoder.encode(`event: runs\ndata: ${list}\n\n`));
            } else if (++quiet * this.#pollMs >= 15000) {
              quiet = 0;
              controller.enqueue(encoder.encode(": still here\n\n")); // keeps proxies from closing an idle stream
            }
          } catch {
            return finish(true); // the stream broke under us
          }
          timer = setTimeout(tick, this.#pollMs);
        };
        tick();
      },
      cancel: () => finish(true),
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" },
    });
  }

  /** Ends every open event stream (before a server shutdown, which waits for open responses). */
  close(): void {
    for (const stop of [...this.#streams]) stop();
  }
}

function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": JSON_TYPE, "cache-control": "no-store", ...headers },
  });
}

function text(body: string, type: string): Response {
  return new Response(body, { headers: { "content-type": type, "cache-control": "no-cache" } });
}

function html(body: string): Response {
  return text(body, "text/html; charset=utf-8");
}

function badName(name: string | undefined): Response {
  return json({
    error: `not a run name: ${JSON.stringify(name ?? "")} (one folder name directly under the runs folder)`,
  }, 400);
}

function noRun(name: string): Response {
  return json({ error: `no run folder named ${JSON.stringify(name)}` }, 404);
}
