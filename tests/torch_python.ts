/**
 * The Python that tests compare against PyTorch with: the first of $TORCH_PYTHON, `python3` on PATH and Debian's
 * `/usr/bin/python3` that imports torch, torchvision and numpy (Debian: `apt-get install python3-torchvision`), or null,
 * in which case those tests are ignored (CI has no torch).
 * @module
 */

/** A Python with torch, torchvision and numpy, or null. */
export const TORCH_PYTHON: string | null = (() => {
  for (const python of [Deno.env.get("TORCH_PYTHON"), "python3", "/usr/bin/python3"]) {
    if (!python) continue;
    try {
      const probe = new Deno.Command(python, { args: ["-c", "import torch, torchvision, numpy"], stderr: "null" });
      if (probe.outputSync().success) return python;
    } catch {
      // not installed
    }
  }
  return null;
})();
