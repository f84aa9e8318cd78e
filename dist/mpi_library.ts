/**
 * The system's MPI library through Deno's FFI: the handful of C functions data-parallel training calls, and the
 * predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) of the two ABIs in use.
 *
 * Open MPI (`libmpi.so.40`, Debian's `libopenmpi3`) passes handles as pointers to exported structs
 * (`MPI_COMM_WORLD` is `&ompi_mpi_comm_world`), found here with `dlsym`. MPICH (`libmpi.so.12`) passes them as 32-bit
 * integer constants from its `mpi.h`; that ABI is written from MPICH's headers and not tested here (best effort).
 *
 * The library is first opened through libc's `dlopen` with RTLD_GLOBAL: Open MPI loads its transport plugins
 * (`mca_*.so`) itself, and they need libmpi's symbols in the global namespace, which `Deno.dlopen` (RTLD_LOCAL)
 * does not give.
 * @module
 */

/** Candidate sonames, in the order tried: Open MPI 3+/4/5, the development symlink, MPICH (and Intel MPI, Cray). */
export const MPI_LIBRARY_NAMES = ["libmpi.so.40", "libmpi.so", "libmpi.so.12"] as const;

const RTLD_NOW = 2;
const RTLD_GLOBAL = 0x100;

const LIBC = {
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
  dlerror: { parameters: [], result: "pointer" },
} as const;

/** The functions used, with handle parameters typed for the ABI (`H`: "pointer" for Open MPI, "i32" for MPICH). */
function mpiSymbols<H extends "pointer" | "i32">(h: H) {
  return {
    MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
    MPI_Initialized: { parameters: ["buffer"], result: "i32" },
    MPI_Comm_rank: { parameters: [h, "buffer"], result: "i32" },
    MPI_Comm_size: { parameters: [h, "buffer"], result: "i32" },
    // sendbuf (MPI_IN_PLACE), recvbuf, count, datatype, op, comm, request
    MPI_Iallreduce: { parameters: ["pointer", "buffer", "i32", h, h, h, "buffer"], result: "i32" },
    // buffer, count, datatype, root, comm, request
    MPI_Ibcast: { parameters: ["buffer", "i32", h, "i32", h, "buffer"], result: "i32" },
    // sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, request
    MPI_Iallgather: { parameters: ["buffer", "i32", h, "buffer", "i32", h, h, "buffer"], result: "i32" },
    // request, flag, status (MPI_STATUS_IGNORE = NULL in both ABIs)
    MPI_Test: { parameters: ["buffer", "buffer", "pointer"], result: "i32" },
    MPI_Abort: { parameters: [h, "i32"], result: "i32" },
    MPI_Finalize: { parameters: [], result: "i32" },
  } as const;
}

type OpenMpiLib = Deno.DynamicLibrary<ReturnType<typeof mpiSymbols<"pointer">>>;
type MpichLib = Deno.DynamicLibrary<ReturnType<typeof mpiSymbols<"i32">>>;

/** A handle of either ABI, as the FFI passes it. */
export type MpiHandle = Deno.PointerValue | number;

/** An opened MPI library: its functions with the ABI's handles bound in, nothing initialised yet. */
export interface MpiLibrary {
  /** "Open MPI" or "MPICH", and the soname that was opened. */
  readonly flavour: "Open MPI" | "MPICH";
  readonly soname: string;
  /** Bytes of one MPI_Request (a pointer in Open MPI, an int in MPICH). */
  readonly requestBytes: number;
  /** The raw functions: `lib.MPI_Comm_rank(handles.commWorld, out)`; handles come from `handles`. */
  // deno-lint-ignore no-explicit-any
  readonly fn: Record<string, (...args: any[]) => number>;
  readonly handles: {
    commWorld: MpiHandle;
    float: MpiHandle;
    double: MpiHandle;
    byte: MpiHandle;
    sum: MpiHandle;
    /** MPI_IN_PLACE: (void*)1 in Open MPI, (void*)-1 in MPICH. */
    inPlace: Deno.PointerValue;
  };
}

/** MPICH's predefined handles (mpi.h of MPICH 3/4). */
const MPICH_HANDLES = {
  commWorld: 0x44000000,
  float: 0x4c00040a,
  double: 0x4c00080b,
  byte: 0x4c00010d,
  sum: 0x58000003,
};

const cString = (s: string) => new TextEncoder().encode(s + "\0");

/**
 * Opens the first of `names` that loads (globally, see the module documentation) and binds its functions.
 * @throws {Error} listing every name tried and the loader's reason, and what to install, when none loads.
 */
export function openMpiLibrary(names: readonly string[] = MPI_LIBRARY_NAMES): MpiLibrary {
  const libc = Deno.dlopen("libc.so.6", LIBC);
  try {
    const failures: string[] = [];
    for (const soname of names) {
      const handle = libc.symbols.dlopen(cString(soname), RTLD_NOW | RTLD_GLOBAL);
      if (handle === null) {
        const reason = libc.symbols.dlerror();
        failures.push(reason ? new Deno.UnsafePointerView(reason).getCString() : `${soname}: not found`);
        continue;
      }
      const symbol = (name: string) => libc.symbols.dlsym(handle, cString(name));
      const openMpi = symbol("ompi_mpi_comm_world") !== null;
      if (openMpi) {
        const lib: OpenMpiLib = Deno.dlopen(soname, mpiSymbols("pointer"));
        const need = (name: string) => {
          const p = symbol(name);
          if (p === null) throw new Error(`${soname}: Open MPI symbol ${name} not found`);
          return p;
        };
        return {
          flavour: "Open MPI",
          soname,
          requestBytes: 8,
          fn: lib.symbols as unknown as MpiLibrary["fn"],
          handles: {
            commWorld: need("ompi_mpi_comm_world"),
            float: need("ompi_mpi_float"),
            double: need("ompi_mpi_double"),
            byte: need("ompi_mpi_byte"),
            sum: need("ompi_mpi_op_sum"),
            inPlace: Deno.UnsafePointer.create(1n),
          },
        };
      }
      const lib: MpichLib = Deno.dlopen(soname, mpiSymbols("i32"));
      return {
        flavour: "MPICH",
        soname,
        requestBytes: 4,
        fn: lib.symbols as unknown as MpiLibrary["fn"],
        handles: { ...MPICH_HANDLES, inPlace: Deno.UnsafePointer.create(0xffffffffffffffffn) },
      };
    }
    throw new Error(
      `this process runs under an MPI launcher, but no MPI library loads (tried ${names.join(", ")}: ` +
        `${failures.join("; ")}). Install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) or ` +
        "MPICH, or point LD_LIBRARY_PATH at the folder holding libmpi.so",
    );
  } finally {
    libc.close(); // the MPI library stays loaded: Deno.dlopen holds its own reference
  }
}
