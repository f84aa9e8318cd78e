import { assertEquals } from "../assert.ts";
import { blobFile, packBlob, packStrings, stringAt } from "../../data/byte_blob.ts";

Deno.test("packBlob keeps files in order in one shared buffer; blobFile views them", () => {
  const files = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array([9])];
  const blob = packBlob(files);
  assertEquals(blob.bytes.buffer instanceof SharedArrayBuffer, true);
  assertEquals([...blob.offsets], [0, 3, 3, 4]);
  files.forEach((f, i) => assertEquals(blobFile(blob, i), f));
});

Deno.test("packStrings / stringAt round-trip UTF-8 names, empty ones included, through shared memory", () => {
  const names = ["train/cat/0001.jpg", "", "val/café/ü ñ 猫.JPEG", "archive.tar:train/dog/x.png"];
  const table = packStrings(names);
  assertEquals(table.bytes.buffer instanceof SharedArrayBuffer, true);
  assertEquals(names.map((_, i) => stringAt(table, i)), names);
  // What a worker receives: a structured clone shares the buffer instead of copying it.
  const { port1, port2 } = new MessageChannel();
  const received = new Promise<typeof table>((resolve) => port2.onmessage = (e) => resolve(e.data));
  port1.postMessage(table);
  return received.then((copy) => {
    assertEquals(copy.bytes.buffer === table.bytes.buffer, false); // another object...
    table.bytes[0] = "T".charCodeAt(0); // ...over the same memory
    assertEquals(stringAt(copy, 0), "Train/cat/0001.jpg");
    port1.close();
    port2.close();
  });
});
