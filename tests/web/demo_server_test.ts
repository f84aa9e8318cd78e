/**
 * The demo server without a browser: the page (cross-origin isolated, for SharedArrayBuffer), its script, files of
 * one folder by plain name only (path traversal refused before any file is touched), loopback names only; and the
 * demo task's flags.
 * @module
 */
import { assert, assertEquals, throws } from "../assert.ts";
import { DemoServer, isServedFileName } from "../../web/demo_server.ts";
import { parseDemoArgs } from "../../tasks/demo.ts";

Deno.test("the demo server serves the page, its script and plain file names, and refuses the rest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "demo_server_test_" });
  try {
    await Deno.mkdir(`${dir}/files`);
    await Deno.writeTextFile(`${dir}/files/model.safetensors`, "bytes");
    await Deno.writeTextFile(`${dir}/secret.txt`, "TOP-SECRET-CONTENT");
    const demo = new DemoServer({ script: "console.log('app');", files: `${dir}/files` });
    const get = (path: string, host = "127.0.0.1:8080", method = "GET") =>
      demo.handle(new Request(`http://${host}${path}`, { method }));

    const page = await get("/");
    assertEquals(page.status, 200);
    assert((await page.text()).includes(`<script type="module" src="/app.js">`));
    assertEquals(page.headers.get("cross-origin-opener-policy"), "same-origin");
    assertEquals(page.headers.get("cross-origin-embedder-policy"), "require-corp");
    const script = await get("/app.js");
    assertEquals([script.status, await script.text()], [200, "console.log('app');"]);
    const file = await get("/files/model.safetensors");
    assertEquals([file.status, await file.text()], [200, "bytes"]);

    // (A literal or percent-encoded ".." segment never reaches the server: URL parsing removes it.)
    for (const path of ["/files/..%2Fsecret.txt", "/files/.hidden", "/files/a%2Fb", "/files/..%5Csecret.txt"]) {
      const r = await get(path);
      assertEquals(r.status, 400, path);
      assert(!(await r.text()).includes("TOP-SECRET"), path);
    }
    assertEquals((await get("/files/model.safetensors/x")).status, 404);
    assertEquals((await get("/files/missing.safetensors")).status, 404);
    assertEquals((await get("/files/%zz")).status, 400);
    assertEquals((await get("/", "evil.example:8080")).status, 403);
    assertEquals((await get("/", "127.0.0.1:8080", "POST")).status, 405);
    assertEquals((await new DemoServer({ script: "" }).handle(new Request("http://localhost/files/x"))).status, 404);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("isServedFileName: one plain segment", () => {
  for (const ok of ["model.safetensors", "img0.png", "a_b-c.d"]) assert(isServedFileName(ok), ok);
  for (const bad of ["", ".", "..", "../x", "a/b", ".env", "a..b", "x y", "a\\b"]) assert(!isServedFileName(bad), bad);
});

Deno.test("deno task demo: flags", () => {
  assertEquals(parseDemoArgs([]), { port: 8080, files: undefined });
  assertEquals(parseDemoArgs(["--port", "0", "--files", "runs"]), { port: 0, files: "runs" });
  assertEquals(parseDemoArgs(["--help"]), "help");
  throws(() => parseDemoArgs(["--port", "http"]), /--port must be an integer from 0 to 65535, got "http"/);
  throws(() => parseDemoArgs(["--port", "70000"]), /--port/);
  throws(() => parseDemoArgs(["--files", ""]), /--files needs a non-empty value/);
  throws(() => parseDemoArgs(["--bogus"]), /bogus/);
});
