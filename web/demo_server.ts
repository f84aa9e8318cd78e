/**
 * The demo's HTTP side as a plain `Request -> Response` function (`tasks/demo.ts` hands it to `Deno.serve`):
 *
 * | path           | answer                                                                         |
 * | -------------- | ------------------------------------------------------------------------------ |
 * | `/`            | the page (`?selftest` runs the kernel self-test, `?checkpoint=URL` loads one)  |
 * | `/app.js`      | the bundled script (web/bundle.ts)                                             |
 * | `/files/NAME`  | a file of the folder given as `files` (checkpoints, images), one path segment  |
 *
 * A file name is checked after percent-decoding: `/files/../x`, `/files/..%2Fx` and names with anything but letters,
 * digits, `.`, `_` and `-` (or starting with `.`) are refused with 400 before any file is touched.
 * @module
 */
import { demoHtml } from "./page_html.ts";

/** Options of {@linkcode DemoServer}. */
export interface DemoOptions {
  /** The page's script (web/bundle.ts). */
  script: string;
  /** A folder served read-only under `/files/` (e.g. exported checkpoints), or none. */
  files?: string;
  /** Answer only requests addressed to a loopback name, as a server bound to 127.0.0.1 should (DNS rebinding). */
  loopbackOnly?: boolean;
}

const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "[::1]"]);
/**
 * Cross-origin isolation: without it a page has no SharedArrayBuffer, which the synthetic dataset's generator (and
 * tfjs's webgpu backend where it can) allocates.
 */
const ISOLATED = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** True when `name` is a plain file name we serve: one segment, no leading dot, no "..". */
export function isServedFileName(name: string): boolean {
  return FILE_NAME.test(name) && !name.includes("..") && name.length <= 200;
}

/** Serves the page, its script and one folder of files; see the module documentation. */
export class DemoServer {
  readonly #options: DemoOptions;

  constructor(options: DemoOptions) {
    this.#options = options;
  }

  /** Answers one request. */
  handle = async (request: Request): Promise<Response> => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text(`${request.method} not allowed`, 405);
    }
    const url = new URL(request.url);
    if ((this.#options.loopbackOnly ?? true) && !LOOPBACK_NAMES.has(url.hostname)) {
      return text(`requests to ${url.hostname} are refused: this demo answers loopback names only`, 403);
    }
    // Split the raw path before decoding, so an encoded "/" stays inside its segment and is refused there.
    let parts: string[];
    try {
      parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    } catch {
      return text("malformed percent-encoding in the path", 400);
    }
    if (parts.length === 1 && (parts[0] === "" || parts[0] === "index.html")) {
      return new Response(demoHtml(), { headers: { "content-type": "text/html; charset=utf-8", ...ISOLATED } });
    }
    if (parts.length === 1 && parts[0] === "app.js") {
      return new Response(this.#options.script, {
        headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store", ...ISOLATED },
      });
    }
    if (parts[0] === "files" && parts.length === 2 && this.#options.files !== undefined) {
      const name = parts[1];
      if (!isServedFileName(name)) return text(`bad file name ${JSON.stringify(name)}`, 400);
      try {
        const bytes = await Deno.readFile(`${this.#options.files}/${name}`);
        return new Response(bytes, { headers: { "content-type": contentType(name), ...ISOLATED } });
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return text(`no file ${name}`, 404);
        return text(`reading ${name}: ${(e as Error).message}`, 500);
      }
    }
    return text("not found", 404);
  };
}

function text(body: string, status: number): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function contentType(name: string): string {
  if (name.endsWith(".png")) return "image/png";
  if (/\.jpe?g$/.test(name)) return "image/jpeg";
  if (name.endsWith(".json")) return "application/json";
  return "application/octet-stream";
}
