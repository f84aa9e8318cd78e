/**
 * Whether this process was started by an MPI launcher (mpirun/mpiexec of Open MPI or MPICH, Slurm's srun), read
 * from the environment the launcher sets, before any library is loaded.
 * @module
 */

/** The job as the launcher describes it. */
export interface LauncherWorld {
  rank: number;
  size: number;
  /** The variable that said so, for messages (e.g. "OMPI_COMM_WORLD_SIZE"). */
  source: string;
}

/** Rank/size variable pairs, in the order they are trusted: Open MPI, PMI (MPICH, Hydra), PMIx, Slurm. */
const PAIRS: readonly [rank: string, size: string][] = [
  ["OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"],
  ["PMI_RANK", "PMI_SIZE"],
  ["PMIX_RANK", "PMIX_SIZE"],
  // A job step's tasks (srun). Not SLURM_NTASKS: an sbatch script itself has SLURM_PROCID 0 and, with --ntasks 8,
  // SLURM_NTASKS 8 while it runs as one process; only srun's steps set SLURM_STEP_NUM_TASKS.
  ["SLURM_PROCID", "SLURM_STEP_NUM_TASKS"],
];

/**
 * The launcher's world from `env` (e.g. `Deno.env.toObject()`), or null when no launcher variable is set (a plain
 * process: training never loads MPI then). PMIx sets no size variable of its own; under srun SLURM_STEP_NUM_TASKS gives it.
 * @throws {Error} naming the variable when one is set but is not a valid rank or size.
 */
export function launcherWorld(env: Record<string, string | undefined>): LauncherWorld | null {
  for (const [rankVar, sizeVar] of PAIRS) {
    if (env[rankVar] === undefined && env[sizeVar] === undefined) continue;
    // Outside a job step (an sbatch script running `deno task train` by itself) the process is alone.
    if (rankVar === "SLURM_PROCID" && env[sizeVar] === undefined) continue;
    const rankText = env[rankVar];
    const sizeText = env[sizeVar] ??
      (rankVar === "PMIX_RANK" ? env.SLURM_STEP_NUM_TASKS ?? env.OMPI_COMM_WORLD_SIZE : undefined);
    // PMIx without a size variable: MPI_Comm_size tells once the library is up.
    if (rankVar === "PMIX_RANK" && sizeText === undefined) {
      return { rank: parseCount(rankText, rankVar), size: 0, source: rankVar };
    }
    const rank = parseCount(rankText, rankVar);
    const size = parseCount(sizeText, sizeVar);
    if (size < 1 || rank >= size) {
      throw new Error(`${rankVar}=${rankText} and ${sizeVar}=${sizeText}: expected 0 <= rank < size`);
    }
    return { rank, size, source: sizeVar };
  }
  return null;
}

function parseCount(text: string | undefined, name: string): number {
  if (text === undefined || !/^\d+$/.test(text)) {
    throw new Error(`the MPI launcher variable ${name} is ${JSON.stringify(text)}: expected a whole number`);
  }
  return Number(text);
}
