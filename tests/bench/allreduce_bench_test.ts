import { assert, assertEquals } from "../assert.ts";
import { allReduceBench } from "../../bench/allreduce_bench.ts";
import type { Collective } from "../../dist/collective.ts";
import { LocalCollective } from "../../dist/collective.ts";

Deno.test("allReduceBench: times every repeat after the warm-up and reports the slowest rank's median", async () => {
  // A stand-in of 2 ranks whose all-reduce takes 2 ms and whose peer reports a 9 ms median, 5 ms minimum.
  const calls: number[] = [];
  const local = new LocalCollective();
  const fake: Collective = {
    broadcast: (d, root, what) => local.broadcast(d, root, what),
    abort: (code) => local.abort(code),
    finalize: () => {},
    size: 2,
    rank: 0,
    description: "fake",
    async allReduceSum(data) {
      calls.push(data.length);
      assert(data.every((v) => v === 0.5), "every repeat starts from equal shares");
      await new Promise((r) => setTimeout(r, 2));
    },
    allGather(data) {
      return Promise.resolve([data.slice(), new Uint8Array(new Float64Array([9, -5]).buffer)]);
    },
  };
  const t = await allReduceBench(fake, 1000, { warmup: 2, repeats: 5 });
  assertEquals(calls.length, 7);
  assertEquals([t.floats, t.bytes, t.ranks], [1000, 4000, 2]);
  assertEquals([t.medianMs, t.minMs], [9, 5]);
  const alone = await allReduceBench(local, 10, { repeats: 3 });
  assert(alone.medianMs >= 0 && alone.medianMs < 50, `${alone.medianMs}`);
});
