// Are MLX's system libraries present? On Linux the addon links liblapack.so.3 and libopenblas.so.0
// (Debian: liblapack3, libopenblas0-pthread). Other systems bring what MLX needs.
import { existsSync } from "node:fs";

/** The shared libraries the Linux MLX addon loads (Debian packages liblapack3, libopenblas0-pthread). */
export const MLX_LINUX_LIBRARIES = ["liblapack.so.3", "libopenblas.so.0"] as const;
const LIB_DIRS = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/usr/lib",
  "/lib",
];

/** Libraries of `wanted` that `ldconfig -p` output does not list. */
export function missingFromLdconfig(ldconfigOutput: string, wanted: readonly string[] = MLX_LINUX_LIBRARIES): string[] {
  const listed = new Set([...ldconfigOutput.matchAll(/^\s*(\S+)\s+\(/gm)].map((m) => m[1]));
  return wanted.filter((lib) => !listed.has(lib));
}

/** Missing MLX libraries on this machine ([] when all found), or undefined when not on Linux. */
export async function missingMlxLibraries(platform: NodeJS.Platform = process.platform): Promise<string[] | undefined> {
  if (platform !== "linux") return undefined;
  let output = "";
  for (const bin of ["ldconfig", "/sbin/ldconfig"]) {
    try {
      const proc = Bun.spawn([bin, "-p"], { stdout: "pipe", stderr: "ignore" });
      output = await new Response(proc.stdout).text();
      if ((await proc.exited) === 0) break;
    } catch {
      // not on PATH: try the next one, then the usual directories
    }
  }
  const missing = missingFromLdconfig(output);
  return missing.filter((lib) => !LIB_DIRS.some((d) => existsSync(`${d}/${lib}`)));
}
