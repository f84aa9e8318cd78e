/**
 * Just enough of the Chrome DevTools protocol to test a page in a real browser: Debian's `chromium`, headless, driven
 * over its WebSocket on 127.0.0.1 (no npm browser package, nothing downloaded). Every wait is bounded.
 * @module
 */

/** The chromium binary on PATH, or null when there is none (the browser tests then skip). */
export function findChromium(): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return null;
}

/** A headless chromium and one page in it. */
export class HeadlessChromium {
  #child: Deno.ChildProcess;
  #ws: WebSocket;
  #profile: string;
  #session = "";
  #nextId = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** URLs the page requested (Network.requestWillBeSent), for checking that a file page loads nothing else. */
  readonly requests: string[] = [];
  /** Uncaught exceptions in the page (Runtime.exceptionThrown). */
  readonly errors: string[] = [];

  private constructor(child: Deno.ChildProcess, ws: WebSocket, profile: string) {
    this.#child = child;
    this.#ws = ws;
    this.#profile = profile;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${msg.error.message} (${msg.error.code})`));
        else p?.resolve(msg.result);
      } else if (msg.method === "Network.requestWillBeSent") this.requests.push(msg.params.request.url);
      else if (msg.method === "Runtime.exceptionThrown") {
        const d = msg.params.exceptionDetails;
        this.errors.push(d.exception?.description ?? d.text);
      }
    };
  }

  /**
   * Starts chromium and opens a blank page (at most `timeoutMs`). With `webgpu`, the page gets WebGPU on SwiftShader
   * (Dawn and its Tint compiler on the CPU), the GPU process enabled; otherwise the GPU is disabled.
   */
  static async launch(binary: string, timeoutMs = 30_000, webgpu = false): Promise<HeadlessChromium> {
    const profile = await Deno.makeTempDir({ prefix: "chromium_profile_" });
    const child = new Deno.Command(binary, {
      args: [
        "--headless",
        "--no-sandbox",
        ...(webgpu ? ["--enable-unsafe-webgpu", "--enable-unsafe-swiftshader"] : ["--disable-gpu"]),
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        `--user-data-dir=${profile}`,
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1280,1000",
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const deadline = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    try {
      // Chromium says where its DevTools endpoint is on stderr.
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let err = "";
      let url: string | undefined;
      while (!url) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`chromium exited before its DevTools endpoint was up:\n${err.slice(-2000)}`);
        err += value;
        url = /DevTools listening on (ws:\/\/\S+)/.exec(err)?.[1];
      }
      reader.releaseLock();
      child.stderr.pipeTo(new WritableStream()).catch(() => {}); // keep draining, or chromium blocks on a full pipe
      const ws = new WebSocket(url);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
      });
      const browser = new HeadlessChromium(child, ws, profile);
      const { targetId } = await browser.send("Target.createTarget", { url: "about:blank" }, false) as {
        targetId: string;
      };
      const { sessionId } = await browser.send("Target.attachToTarget", { targetId, flatten: true }, false) as {
        sessionId: string;
      };
      browser.#session = sessionId;
      await browser.send("Page.enable");
      await browser.send("Runtime.enable");
      await browser.send("Network.enable");
      return browser;
    } catch (e) {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw e;
    } finally {
      clearTimeout(deadline);
    }
  }

  /** One DevTools command (to the page unless `toPage` is false), answered within `timeoutMs` (default 20 s). */
  send(method: string, params: Record<string, unknown> = {}, toPage = true, timeoutMs = 20_000): Promise<unknown> {
    const id = this.#nextId++;
    const message = { id, method, params, ...(toPage ? { sessionId: this.#session } : {}) };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer from chromium in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.#ws.send(JSON.stringify(message));
    });
  }

  /** Opens `url` in the page. */
  async navigate(url: string): Promise<void> {
    const r = await this.send("Page.navigate", { url }) as { errorText?: string };
    if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`);
  }

  /** The value of a JavaScript expression in the page (promises awaited, for at most `timeoutMs`). */
  async evaluate<T = unknown>(expression: string, timeoutMs = 20_000): Promise<T> {
    const params = { expression, returnByValue: true, awaitPromise: true };
    const r = await this.send("Runtime.evaluate", params, true, timeoutMs) as {
      result: { value: T };
      exceptionDetails?: { exception?: { description?: string }; text: string };
    };
    if (r.exceptionDetails) {
      throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    }
    return r.result.value;
  }

  /** Evaluates `expression` every 100 ms until it is truthy and returns that value; fails after `timeoutMs`. */
  async waitFor<T = unknown>(expression: string, what: string, timeoutMs = 20_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < end) {
      try {
        last = await this.evaluate<T>(expression);
        if (last) return last as T;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last)}`);
  }

  /** Closes the browser (killed if it does not exit in 5 s) and removes its profile. */
  async close(): Promise<void> {
    try {
      this.#ws.close();
    } catch { /* already closed */ }
    this.#child.kill("SIGTERM");
    const kill = setTimeout(() => this.#child.kill("SIGKILL"), 5000);
    await this.#child.status;
    clearTimeout(kill);
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }
}
