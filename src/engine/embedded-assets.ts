// Files baked into the compiled executable that native code must open by a real path: MLX's addon (with
// mlx.metallib beside it on Metal builds, where MLX looks for it) and the embedded model's weights. They are
// copied once into $EXO_HOME/runtime/<version>-<build id>/ and used from there. From sources nothing is copied.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative } from "node:path";
import { exoHome } from "../config/exo-home.ts";
import { embeddedRoot } from "../embedded-root.ts";
import { NodeError } from "../errors.ts";
import { VERSION } from "../version.ts";

declare const EXO_BUILD_ID: string | undefined;

/** Hash of everything build.ts embedded: two different builds never share an extraction folder. */
export const BUILD_ID: string = typeof EXO_BUILD_ID === "string" ? EXO_BUILD_ID : "dev";

/** Extraction folders kept under $EXO_HOME/runtime (this build's and the most recent others). */
const KEEP_RUNTIME_DIRS = 3;

/** Install command for the system libraries the Linux addon links against. */
export const LINUX_MLX_LIBS_HINT = "sudo apt-get install -y liblapack3 libopenblas0-pthread";

/** Where the embedded files live and where they are copied to. */
export interface RuntimeLocation {
  /** Root of the files embedded by build.ts (Bun's `/$bunfs/root` in the executable). */
  root: string;
  /** The extraction folder, usually runtimeDir(EXO_HOME). */
  dir: string;
}

/** The versioned extraction folder under an EXO_HOME. */
export function runtimeDir(home: string, id = `${VERSION}-${BUILD_ID}`): string {
  return join(home, "runtime", id);
}

/**
 * Copies a file or a directory tree unless each file is already there with the same size (the folder is
 * named by a content hash, so a same-size file is the same file). Each file lands by rename, so a crash
 * or another process copying at the same time never leaves half a file. Returns `to`.
 */
export function copyOut(from: string, to: string): string {
  if (statSync(from).isDirectory()) {
    mkdirSync(to, { recursive: true });
    for (const name of readdirSync(from)) copyOut(join(from, name), join(to, name));
    return to;
  }
  const size = statSync(from).size;
  if (existsSync(to) && statSync(to).size === size) return to;
  // Bun's embedded file system does not support copyFile; read and write the bytes instead.
  const tmp = `${to}.${process.pid}.tmp`;
  writeFileSync(tmp, readFileSync(from));
  renameSync(tmp, to);
  return to;
}

/**
 * Loads the MLX addon embedded in this executable from its extracted copy and returns its exports.
 * @throws NodeError E_MLX_UNAVAILABLE when this build carries no addon for this machine, or it cannot load.
 */
export function loadMlxAddon(at: RuntimeLocation): Record<string, unknown> {
  const addon = join(at.root, "mlx.node");
  if (!existsSync(addon)) throw new NodeError("E_MLX_UNAVAILABLE", missingAddonMessage());
  const fresh = !existsSync(join(at.dir, "mlx.node"));
  mkdirSync(at.dir, { recursive: true });
  const path = copyOut(addon, join(at.dir, "mlx.node"));
  if (fresh) pruneRuntimeDirs(dirname(at.dir), KEEP_RUNTIME_DIRS);
  const metallib = join(at.root, "mlx.metallib");
  if (existsSync(metallib)) copyOut(metallib, join(at.dir, "mlx.metallib"));
  const mod = { exports: {} as Record<string, unknown> };
  try {
    process.dlopen(mod, path);
  } catch (cause) {
    const hint =
      process.platform === "linux"
        ? `; MLX needs Debian's liblapack3 and libopenblas0-pthread: ${LINUX_MLX_LIBS_HINT}`
        : "";
    throw new NodeError("E_MLX_UNAVAILABLE", `cannot load MLX from ${path}: ${(cause as Error).message}${hint}`, {
      cause,
    });
  }
  return mod.exports;
}

/**
 * Deletes all but the `keep` most recently modified extraction folders beside each other, so upgrades do not
 * pile up copies of the addon. A folder still in use is safe: a loaded addon stays mapped, and an executable
 * whose folder is gone copies its files out again.
 */
export function pruneRuntimeDirs(runtimeRoot: string, keep: number): string[] {
  const dirs = readdirSync(runtimeRoot, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => ({ path: join(runtimeRoot, d.name), mtimeMs: statSync(join(runtimeRoot, d.name)).mtimeMs }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  const removed = dirs.slice(keep).map((d) => d.path);
  for (const path of removed) rmSync(path, { recursive: true, force: true });
  return removed;
}

/** Why this executable cannot run MLX (built without the addon for this machine, e.g. cross-built), or undefined. */
export function missingMlxAddon(root: string | undefined = embeddedRoot()): string | undefined {
  if (root === undefined || existsSync(join(root, "mlx.node"))) return undefined;
  return missingAddonMessage();
}

/** A model directory MLX can read by path: an embedded one is copied out first; a real one is returned as is. */
export function realModelDir(dir: string, at: RuntimeLocation): string {
  const rel = relative(at.root, dir);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) return dir;
  return copyOut(dir, join(at.dir, rel));
}

/** Where this executable's embedded files are and go: `/$bunfs/root` → runtimeDir(EXO_HOME); undefined from sources. */
export function defaultLocation(): RuntimeLocation | undefined {
  const root = embeddedRoot();
  return root === undefined ? undefined : { root, dir: runtimeDir(exoHome()) };
}

/** The model directory for MLX in this process: see realModelDir; unchanged when running from sources. */
export function modelDirForMlx(dir: string): string {
  const at = defaultLocation();
  return at ? realModelDir(dir, at) : dir;
}

/**
 * The addon for node-mlx's lib/index.js inside the executable (build.ts rewrites its require to call this).
 * @throws NodeError E_MLX_UNAVAILABLE (see loadMlxAddon).
 */
export function loadEmbeddedMlx(): Record<string, unknown> {
  const at = defaultLocation();
  if (!at) throw new NodeError("E_MLX_UNAVAILABLE", "loadEmbeddedMlx runs only inside the compiled executable");
  return loadMlxAddon(at);
}

// --- internal ---

function missingAddonMessage(): string {
  const target = `${process.platform}-${process.arch}`;
  return [
    `this exo executable (${VERSION}) carries no MLX addon for ${target}, so it cannot load or run a model`,
    `(everything else works: start without a model, topology, doctor, models, pull).`,
    target === "darwin-arm64"
      ? `Build exo on this Mac to embed the Metal addon: bun install && bun pm trust @frost-beta/mlx && bun run build (then use dist/exo).`
      : `Build exo on a ${target} machine: bun install && bun run build (then use dist/exo).`,
  ].join(" ");
}
