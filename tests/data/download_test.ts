import { assert, assertEquals, assertStrictEquals, rejects } from "../assert.ts";
import { CIFAR10_LAYOUT, type CifarLayout } from "../../data/cifar_binary.ts";
import { locateCifar, md5File } from "../../data/cifar_download.ts";
import { runPrepare } from "../../tasks/prepare.ts";
import { flagOf } from "../../tasks/args.ts";
import { FieldMessageError } from "../../io/config_error.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";

const offline: typeof fetch = () => Promise.reject(new TypeError("error sending request: dns error"));

/** A fetch that serves `body` for any URL and records the URLs asked for. */
function serving(body: Uint8Array, asked: string[]): typeof fetch {
  return (input) => {
    asked.push(String(input));
    return Promise.resolve(new Response(body.slice(), { headers: { "content-length": String(body.length) } }));
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("offline: the error says which file to place where, and that dataset synthetic works offline", async () => {
  await withDir(async (dir) => {
    const err = await locateCifar(CIFAR10_LAYOUT, dir, { fetch: offline }).catch((e) => e as Error);
    // The library names the field; a command line says it as its flag.
    assert(err instanceof FieldMessageError, String(err));
    assert(err.describe(flagOf).includes("--dataset synthetic works offline"), err.describe(flagOf));
    for (
      const part of [
        "Could not download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "dns error",
        `Place cifar-10-binary.tar.gz (md5 c32a1d4ab5d03f1284b67883e8d87530`,
        join(dir, "cifar-10-binary.tar.gz"),
        join(dir, "cifar-10-batches-bin"),
        "dataset synthetic works offline",
      ]
    ) assert(err.message.includes(part), `missing "${part}" in: ${err.message}`);
    assertEquals([...Deno.readDirSync(dir)], []); // nothing half-written
  });
});

Deno.test("download: md5 mismatch keeps nothing; a match is renamed into place, and later runs do not fetch", async () => {
  await withDir(async (dir) => {
    const body = new TextEncoder().encode("not really cifar, but bytes with a known md5");
    const asked: string[] = [];
    await rejects(
      locateCifar(CIFAR10_LAYOUT, dir, { fetch: serving(body, asked) }),
      /downloaded 44 bytes with md5 [0-9a-f]{32}, expected c32a1d4ab5d03f1284b67883e8d87530; nothing was kept/,
    );
    assertEquals([...Deno.readDirSync(dir)], []);

    const layout: CifarLayout = { ...CIFAR10_LAYOUT, md5: createHash("md5").update(body).digest("hex") };
    const progress: string[] = [];
    const source = await locateCifar(layout, dir, {
      fetch: serving(body, asked),
      url: "http://mirror.invalid/c.tgz",
      onProgress: (m) => progress.push(m),
    });
    assertEquals(source, { kind: "archive", path: join(dir, "cifar-10-binary.tar.gz") });
    assertEquals(await Deno.readFile(source.path), body);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["cifar-10-binary.tar.gz"]); // no partial file left
    assertStrictEquals(asked.at(-1), "http://mirror.invalid/c.tgz");
    assert(progress.at(-1)!.includes("md5 ok"));
    assertStrictEquals(await md5File(source.path), layout.md5);

    const before = asked.length;
    assertEquals(await locateCifar(layout, dir, { fetch: serving(body, asked), verifyExisting: true }), source);
    assertStrictEquals(asked.length, before);
    // The checked path catches an archive altered after download.
    await rejects(
      locateCifar(CIFAR10_LAYOUT, dir, { fetch: offline, verifyExisting: true }),
      /cifar-10-binary\.tar\.gz: md5 [0-9a-f]{32}, expected c32a1d4ab5d03f1284b67883e8d87530/,
    );
  });
});

Deno.test("download off, HTTP errors, and the extracted directory taking precedence", async () => {
  await withDir(async (dir) => {
    await rejects(
      locateCifar(CIFAR10_LAYOUT, dir, { download: false, fetch: offline }),
      /cifar10 not found under .* and download is off\. Place cifar-10-binary\.tar\.gz/,
    );
    const notFound: typeof fetch = () => Promise.resolve(new Response("gone", { status: 404 }));
    await rejects(locateCifar(CIFAR10_LAYOUT, dir, { fetch: notFound }), /Could not download .* \(HTTP 404\)\. Place/);
    await Deno.mkdir(join(dir, "cifar-10-batches-bin"));
    assertEquals(await locateCifar(CIFAR10_LAYOUT, dir, { fetch: offline }), {
      kind: "directory",
      path: join(dir, "cifar-10-batches-bin"),
    });
  });
});

Deno.test("tasks/prepare: unknown flags and bad datasets exit 2 naming them; offline exits 1 with the hint", async () => {
  const lines: string[] = [];
  const io = { log: (l: string) => lines.push(l), error: (l: string) => lines.push(l), fetch: offline };
  assertStrictEquals(await runPrepare(["--dataset", "cifar10", "--bogus"], io), 2);
  assert(lines.at(-1)!.includes("--bogus"), lines.at(-1)!);
  assert(lines.at(-1)!.startsWith("error: "), lines.at(-1)!); // only errors start with "error:", as every task says
  assertStrictEquals(await runPrepare(["--dataset", "mnist"], io), 2);
  assert(lines.at(-1)!.includes('received "mnist"'), lines.at(-1)!);
  await withDir(async (dir) => {
    assertStrictEquals(await runPrepare(["--dataset", "cifar100", "--data-dir", dir], io), 1);
    assert(lines.at(-1)!.includes(join(dir, "cifar-100-binary.tar.gz")), lines.at(-1)!);
    assert(lines.at(-1)!.includes("--dataset synthetic works offline"), lines.at(-1)!); // the field as its flag
    assert(lines.at(-1)!.startsWith("error: "), lines.at(-1)!);
  });
  assertStrictEquals(await runPrepare(["--dataset", "synthetic"], io), 0);
});
