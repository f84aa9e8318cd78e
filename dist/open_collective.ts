/**
 * The {@linkcode Collective} of this process: MPI when an MPI launcher started it, else the single-process one
 * (which never loads an MPI library).
 * @module
 */
import { type Collective, LocalCollective } from "./collective.ts";
import { launcherWorld } from "./launcher_env.ts";
import { MpiCollective } from "./mpi_collective.ts";

/** Options of {@linkcode openCollective}. */
export interface OpenCollectiveOptions {
  /** Seconds a collective waits for the other ranks. */
  timeoutSeconds: number;
  /** The environment to read the launcher's variables from (default `Deno.env.toObject()`). */
  env?: Record<string, string | undefined>;
  /** Sonames to try (default `MPI_LIBRARY_NAMES`). */
  libraryNames?: readonly string[];
}

/**
 * MPI when a launcher's variables (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK, SLURM_PROCID) say the job has more
 * than one process; otherwise the single-process collective.
 * @throws {Error} when the library does not load, or MPI's world size disagrees with the launcher's (e.g. `srun`
 *   without `--mpi=pmix`, where each process initialises MPI alone).
 */
export function openCollective(options: OpenCollectiveOptions): Collective {
  const world = launcherWorld(options.env ?? Deno.env.toObject());
  if (world === null || world.size === 1) return new LocalCollective();
  const mpi = MpiCollective.init(options);
  if (world.size !== 0 && mpi.size !== world.size) {
    throw new Error(
      `${world.source} says the job has ${world.size} processes, but ${mpi.description} sees ${mpi.size}: the ` +
        "launcher and the MPI library do not talk (under Slurm use srun --mpi=pmix, or mpirun)",
    );
  }
  return mpi;
}
