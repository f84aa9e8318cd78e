import { assertEquals } from "../assert.ts";
import { runFaultTrials } from "../fault_injection.ts";

// A few kills of a real training process (SIGKILL, nothing flushed or cleaned up), one per phase; `deno task faults`
// runs many more at random moments. Each trial resumes with --resume auto and must end bit-identical to a run never
// interrupted, with no unreadable checkpoint left behind.
Deno.test("SIGKILL during a step, evaluation, a checkpoint write and before a folder fsync: resume is bit-identical", async () => {
  const dir = await Deno.makeTempDir({ prefix: "faults-" });
  try {
    const results = await runFaultTrials(dir, ["step:5", "eval:1", "save:4:1500", "rename:7"]);
    assertEquals(
      results.map((t) => [t.kill, t.phase, t.unreadable, t.difference ?? "identical"]),
      [
        ["step:5", "step", [], "identical"],
        ["eval:1", "eval", [], "identical"],
        ["save:4:1500", "save", [], "identical"],
        ["rename:7", "rename", [], "identical"],
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
