import { assert, assertEquals, throws } from "../assert.ts";
import { DashboardServer } from "../../report/dashboard_server.ts";
import { UsageError } from "../../tasks/args.ts";
import { parseDashboardArgs } from "../../tasks/dashboard.ts";
import { parseReportArgs } from "../../tasks/report.ts";
import { appendFixtureEpoch, writeFixtureRun } from "./run_fixture.ts";

/** A runs folder with one run, a folder beside it holding a secret run, and a link to it; served on 127.0.0.1. */
async function withServer(fn: (ctx: { root: string; port: number; base: string }) => Promise<void>) {
  const tmp = await Deno.makeTempDir({ prefix: "dashboard_server_test_" });
  const root = `${tmp}/runs`;
  await writeFixtureRun(`${root}/good`, [0.5, 0.6], { eval: true });
  await writeFixtureRun(`${tmp}/outside`, [0.5]);
  await Deno.writeTextFile(`${tmp}/outside/config.json`, JSON.stringify({ arch: "SECRET-MARKER" }));
  await Deno.symlink(`${tmp}/outside`, `${root}/link`);
  const dashboard = new DashboardServer({ root, pollMs: 50 });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, dashboard.handle);
  try {
    const port = server.addr.port;
    await fn({ root, port, base: `http://127.0.0.1:${port}` });
  } finally {
    dashboard.close();
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

/** A request with its path sent exactly as given (fetch would normalise `..` and `%2e%2e` away). */
async function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    const text = await new Response(conn.readable).text();
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text };
  } catch (e) {
    try {
      conn.close();
    } catch { /* closed by the stream */ }
    throw e;
  }
}

Deno.test("the JSON API: runs, one run, its metrics; 404 for no such run; the page and its assets", async () => {
  await withServer(async ({ base, root }) => {
    const list = await (await fetch(`${base}/api/runs`)).json();
    assertEquals(list.root, root);
    assertEquals(list.runs.map((r: { name: string }) => r.name), ["good"]);
    assert(list.skipped.some((s: string) => s.endsWith("link: a symbolic link, not followed")), list.skipped);
    const detail = await (await fetch(`${base}/api/runs/good`)).json();
    assertEquals([detail.epochsDone, detail.lastTop1, detail.evals.length], [2, 0.6, 1]);
    const metrics = await (await fetch(`${base}/api/runs/good/metrics`)).json();
    assertEquals(metrics.records.map((r: { test_top1: number }) => r.test_top1), [0.5, 0.6]);
    assertEquals(metrics.skipped, []);
    for (const path of ["/api/runs/nope", "/api/runs/nope/metrics", "/api/runs/good/other", "/api/x", "/x"]) {
      const res = await fetch(`${base}${path}`);
      await res.body?.cancel();
      assertEquals(res.status, 404, path);
    }
    const page = await fetch(`${base}/`);
    assert((await page.text()).includes("RunCharts.startDashboard()"));
    for (const [asset, type] of [["uPlot.iife.min.js", "text/javascript"], ["charts.js", "text/javascript"]]) {
      const res = await fetch(`${base}/assets/${asset}`);
      assert(res.headers.get("content-type")!.startsWith(type));
      assert((await res.text()).length > 1000, asset);
    }
    const report = await fetch(`${base}/report/good`);
    assert((await report.text()).includes('id="run-data"'));
    const post = await fetch(`${base}/api/runs`, { method: "POST" });
    await post.body?.cancel();
    assertEquals(post.status, 405);
  });
});

Deno.test("path traversal in the API is refused, encoded or not, and nothing outside the runs folder is read", async () => {
  await withServer(async ({ port }) => {
    const attempts = [
      "/api/runs/../outside",
      "/api/runs/../outside/metrics",
      "/api/runs/../../../../etc/passwd",
      "/api/runs/..%2Foutside",
      "/api/runs/..%2foutside/metrics",
      "/api/runs/%2e%2e%2Foutside",
      "/api/runs/%2E%2E/outside/metrics",
      "/api/runs/..%5Coutside",
      "/api/runs/%252e%252e%252Foutside",
      "/api/runs/..%2F..%2F..%2Fetc",
      "/api/runs/%2e%2e",
      "/api/runs/..",
      "/api/runs/link",
      "/api/runs/link/metrics",
      "/api/runs/%00",
      "/api/runs/%E0%A4%A",
      "/report/..%2Foutside",
      "/report/link",
      "/assets/..%2F..%2Fdeno.json",
      "/assets/../report/page_html.ts",
    ];
    for (const path of attempts) {
      const { status, body } = await rawGet(port, path);
      assert([400, 404].includes(status), `${path}: status ${status}`);
      assert(!body.includes("SECRET-MARKER") && !body.includes("root:x:0"), `${path} leaked: ${body.slice(0, 300)}`);
    }
    // The refusal is the name check, before any file access: an encoded "../" is a 400, not a missing run.
    assertEquals((await rawGet(port, "/api/runs/..%2Foutside")).status, 400);
    assertEquals((await rawGet(port, "/api/runs/good")).status, 200, "the raw client does reach real runs");
  });
});

Deno.test("the event stream sends the runs now and again when metrics.jsonl grows", async () => {
  await withServer(async ({ base, root }) => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 10_000);
    try {
      const res = await fetch(`${base}/api/events`, { signal: abort.signal });
      assertEquals(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      /** The next `runs` event's data. */
      const nextRuns = async () => {
        for (;;) {
          const end = buffer.indexOf("\n\n");
          if (end >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = /^event: runs\ndata: (.*)$/m.exec(event);
            if (data) return JSON.parse(data[1]);
            continue;
          }
          const { value, done } = await reader.read();
          if (done) throw new Error("event stream ended");
          buffer += value;
        }
      };
      const first = await nextRuns();
      assertEquals(first.runs[0].epochsDone, 2);
      await appendFixtureEpoch(`${root}/good`, 3, 0.875);
      const second = await nextRuns();
      assertEquals([second.runs[0].epochsDone, second.runs[0].lastTop1, second.runs[0].state], [3, 0.875, "finished"]);
      await reader.cancel();
    } finally {
      clearTimeout(timer);
    }
  });
});

Deno.test("dashboard and report flags: defaults bind 127.0.0.1, bad flags are UsageErrors naming the flag", () => {
  assertEquals(parseDashboardArgs([]), { runs: "runs", port: 8080, host: "127.0.0.1" });
  assertEquals(parseDashboardArgs(["--runs", "r", "--port", "0", "--host", "0.0.0.0"]), {
    runs: "r",
    port: 0,
    host: "0.0.0.0",
  });
  assertEquals(parseDashboardArgs(["-h"]), "help");
  const bad: [string[], string][] = [
    [["--port", "http"], "--port"],
    [["--port", "70000"], "--port"],
    [["--port", "-1"], "--port"],
    [["--runs", ""], "--runs"],
    [["--bogus"], "--bogus"],
    [["--port"], "--port"],
  ];
  for (const [argv, flag] of bad) {
    throws(() => parseDashboardArgs(argv), (e: unknown) => e instanceof UsageError && e.flag === flag, argv.join(" "));
  }
  assertEquals(parseReportArgs(["runs/a", "runs/b"]), ["runs/a", "runs/b"]);
  assertEquals(parseReportArgs(["--help"]), "help");
  throws(() => parseReportArgs([]), (e: unknown) => e instanceof UsageError && e.flag === "RUN");
  throws(() => parseReportArgs(["--out", "x"]), (e: unknown) => e instanceof UsageError && e.flag === "--out");
});

const TASKS = new URL("../../tasks/", import.meta.url).pathname;

Deno.test("deno task dashboard listens on 127.0.0.1 by default and stops on SIGTERM; bad flags exit 2", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "dashboard_task_test_" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${TASKS}dashboard.ts`, "--runs", tmp, "--port", "0"],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!/http:\/\/[^ ]+\//.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const url = /http:\/\/([^ ]+)\//.exec(out)?.[0];
    assert(url?.startsWith("http://127.0.0.1:"), out);
    const res = await fetch(`${url}api/runs`);
    assertEquals((await res.json()).runs, []);
    child.kill("SIGTERM");
    const status = await child.status;
    clearTimeout(kill);
    await reader.cancel();
    await child.stderr.cancel();
    assertEquals(status.code, 0, "a clean stop");
    for (const [task, args, flag] of [["dashboard", ["--prot", "1"], "--prot"], ["report", [], "RUN"]] as const) {
      const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${TASKS}${task}.ts`, ...args] })
        .output();
      const err = new TextDecoder().decode(r.stderr);
      assertEquals(r.code, 2, err);
      assert(err.includes(flag), err);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a --port that is taken is named, for the dashboard and the demo, exit 1", async () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (holder.addr as Deno.NetAddr).port;
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${TASKS}dashboard.ts`, "--runs", "/nonexistent", "--port", String(port)],
    }).output();
    const err = new TextDecoder().decode(r.stderr);
    assertEquals(err, `error: --port ${port}: address already in use (another dashboard? choose another --port)\n`);
    assertEquals(r.code, 1);
    // deno task demo says so before it bundles its page.
    const demo = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${TASKS}demo.ts`, "--port", String(port)],
    }).output();
    const demoErr = new TextDecoder().decode(demo.stderr);
    assertEquals(demoErr, `error: --port ${port}: address already in use (another demo? choose another --port)\n`);
    assertEquals(new TextDecoder().decode(demo.stdout), "", "nothing bundled");
    assertEquals(demo.code, 1);
  } finally {
    holder.close();
  }
});

Deno.test("deno task report refuses a folder that is no run (neither config.json nor metrics.jsonl), exit 2", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "report_task_test_" });
  const report = async (dir: string) => {
    const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", `${TASKS}report.ts`, dir] }).output();
    return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
  };
  try {
    const photos = `${tmp}/photos`;
    await Deno.mkdir(photos);
    await Deno.writeTextFile(`${photos}/notes.txt`, "not a run");
    await Deno.mkdir(`${photos}/config.json`); // a folder of that name is no configuration
    const refused = await report(photos);
    assertEquals(refused.code, 2, refused.stderr);
    assert(
      refused.stderr.startsWith(`error: ${photos}: not a run folder (it holds neither config.json nor metrics.jsonl`),
      refused.stderr,
    );
    assertEquals([...Deno.readDirSync(photos)].map((e) => e.name).sort(), ["config.json", "notes.txt"], "no report");
    // Either file makes a run folder: a run that has only begun, or metrics without their configuration.
    await writeFixtureRun(`${tmp}/begun`, []);
    await Deno.mkdir(`${tmp}/metrics_only`);
    await appendFixtureEpoch(`${tmp}/metrics_only`, 1, 0.5);
    for (const dir of [`${tmp}/begun`, `${tmp}/metrics_only`]) {
      const ok = await report(dir);
      assertEquals(ok.code, 0, `${dir}: ${ok.stderr}`);
      assert((await Deno.stat(`${dir}/report.html`)).isFile, dir);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("requests addressed to another name are refused (DNS rebinding), unless the server is bound elsewhere", async () => {
  await withServer(async ({ port }) => {
    const get = async (host: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(
        new TextEncoder().encode(`GET /api/runs HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
      );
      const text = await new Response(conn.readable).text();
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    };
    // A rebound name reaches 127.0.0.1 with its own Host header.
    assertEquals(await get("attacker.example"), 403);
    assertEquals(await get(`attacker.example:${port}`), 403);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "localhost"]) {
      assertEquals(await get(host), 200, host);
    }
  });
  const open = new DashboardServer({ root: "/nonexistent", loopbackOnly: false });
  const res = await open.handle(new Request("http://dashboard.lan:8080/api/runs"));
  await res.body?.cancel();
  assert(res.status !== 403, "--host 0.0.0.0 serves other names");
  open.close();
});
