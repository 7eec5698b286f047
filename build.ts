// `bun run build`: one `exo` executable for this machine (dist/exo) and for Apple Silicon (dist/exo-darwin-arm64),
// MLX's addon and the default model embedded (extracted at run time by src/engine/embedded-assets.ts), bunfig/.env
// autoloading off; a build for this machine is smoke-tested from an empty folder. Options: --target, --outdir.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import type { BunPlugin } from "bun";

/** `bun-<os>-<arch>` as Bun's --compile takes it; "host" means the machine running the build. */
export type BuildTarget = "host" | `bun-${"linux" | "darwin" | "windows"}-${"x64" | "arm64"}`;

export interface BuildOptions {
  target: BuildTarget;
  outfile: string;
  /** Project root holding src/, configs/ and node_modules/ (default: this file's folder). */
  root?: string;
  /** False leaves MLX's addon out even when it matches (tests use it to act out a cross-built binary). */
  embedMlx?: boolean;
}

export interface BuildResult {
  outfile: string;
  sizeBytes: number;
  /** `<os>-<arch>` the executable runs on. */
  platform: string;
  /** False when no MLX addon for that platform was available to embed (e.g. darwin built on Linux). */
  mlxEmbedded: boolean;
  buildId: string;
  /** The version baked in (package.json's). */
  version: string;
}

/** Compiles src/main.ts into one executable. Throws with Bun's messages when the build fails. */
export async function buildExecutable(opts: BuildOptions): Promise<BuildResult> {
  const root = resolve(opts.root ?? import.meta.dir);
  const platform = opts.target === "host" ? `${process.platform}-${process.arch}` : opts.target.slice("bun-".length);
  const mlxDir = join(root, "node_modules/@frost-beta/mlx/build/Release");
  const addon = join(mlxDir, "mlx.node");
  // The installed addon is the build machine's; it goes in only when it matches the target.
  const mlxEmbedded =
    opts.embedMlx !== false && existsSync(addon) && nativeFormat(readFileSync(addon).subarray(0, 20)) === platform;
  const mlxAssets = mlxEmbedded
    ? ["mlx.node", "mlx.metallib"].map((f) => join(mlxDir, f)).filter((f) => existsSync(f))
    : [];
  const modelDir = join(root, "configs/default-model");
  const assets = [...mlxAssets, ...(existsSync(modelDir) ? [modelDir] : [])];
  const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  const buildId = contentHash([...assets, join(root, "package.json")]);

  const result = await Bun.build({
    entrypoints: [join(root, "src/main.ts")],
    root,
    minify: true,
    sourcemap: "linked",
    plugins: [mlxLoaderPlugin(join(root, "src/engine/embedded-assets.ts"))],
    define: { EXO_BUILD_VERSION: JSON.stringify(version), EXO_BUILD_ID: JSON.stringify(buildId) },
    compile: {
      ...(opts.target === "host" ? {} : { target: opts.target }),
      outfile: opts.outfile,
      autoloadBunfig: false,
      autoloadDotenv: false,
      assets,
    },
  });
  if (!result.success)
    throw new AggregateError(result.logs, `bun build failed for ${opts.target}:\n${result.logs.join("\n")}`);
  // The source map is embedded in the executable (stack traces name src/ files); the side .map file is redundant.
  for (const out of result.outputs) if (out.path.endsWith(".map")) rmSync(out.path, { force: true });
  return { outfile: opts.outfile, sizeBytes: statSync(opts.outfile).size, platform, mlxEmbedded, buildId, version };
}

/** `<os>-<arch>` of an ELF or 64-bit Mach-O file from its first 20 bytes, or undefined. */
export function nativeFormat(head: Uint8Array): string | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length >= 20 && view.getUint32(0) === 0x7f454c46) {
    const machine = view.getUint16(18, true);
    return machine === 0x3e ? "linux-x64" : machine === 0xb7 ? "linux-arm64" : undefined;
  }
  if (head.length >= 8 && view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true);
    return cpu === 0x0100000c ? "darwin-arm64" : cpu === 0x01000007 ? "darwin-x64" : undefined;
  }
  return undefined;
}

// --- internal ---

/**
 * node-mlx's lib/index.js requires its addon by a computed path that the bundler bakes in as the build
 * machine's absolute path, and nn/optimizers by a template string: both are rewritten at bundle time.
 */
function mlxLoaderPlugin(loaderModule: string): BunPlugin {
  return {
    name: "exo-mlx-loader",
    setup(build) {
      build.onLoad({ filter: /[\\/]@frost-beta[\\/]mlx[\\/]lib[\\/]index\.js$/ }, async (args) => {
        const source = await Bun.file(args.path).text();
        const addonRequire = "require(__dirname + '/../build/Release/mlx.node')";
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal source text node-mlx ships
        const lazyRequire = "require(`../dist/${name}`)";
        if (!source.includes(addonRequire) || !source.includes(lazyRequire)) {
          throw new Error(
            `${args.path}: unexpected @frost-beta/mlx loader (not 0.0.7?); update build.ts's mlxLoaderPlugin`,
          );
        }
        const contents = source
          .replace(addonRequire, `require(${JSON.stringify(loaderModule)}).loadEmbeddedMlx()`)
          .replace(lazyRequire, "(name === 'nn' ? require('../dist/nn') : require('../dist/optimizers'))");
        return { contents, loader: "js" };
      });
    },
  };
}

/** Short hash over files and directory trees (names and bytes). */
function contentHash(paths: string[]): string {
  const hasher = new Bun.CryptoHasher("sha256");
  const add = (p: string) => {
    if (statSync(p).isDirectory()) {
      for (const name of readdirSync(p).sort()) add(join(p, name));
      return;
    }
    hasher.update(basename(p));
    hasher.update(readFileSync(p));
  };
  for (const p of paths) add(p);
  return hasher.digest("hex").slice(0, 12);
}

function parseTarget(value: string): BuildTarget {
  if (value === "host" || /^bun-(linux|darwin|windows)-(x64|arm64)$/.test(value)) return value as BuildTarget;
  throw new Error(`--target ${value}: expected host or bun-<linux|darwin|windows>-<x64|arm64>`);
}

/** Runs a freshly built executable for this machine from an empty folder: it must start and know its version. */
function smokeTest(outfile: string, version: string): void {
  const run = Bun.spawnSync([resolve(outfile), "--version"], { cwd: tmpdir(), stderr: "pipe" });
  const said = run.stdout.toString().trim();
  if (run.exitCode !== 0 || said !== version)
    throw new Error(`${outfile} --version printed "${said}" (exit ${run.exitCode}): ${run.stderr}`);
}

function parseArgs(argv: string[]): { targets: BuildTarget[]; outdir: string } {
  let targets: BuildTarget[] = ["host", "bun-darwin-arm64"];
  let outdir = "dist";
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2);
    const value = inline ?? argv[++i];
    if (flag === "--target" && value) targets = value.split(",").map(parseTarget);
    else if (flag === "--outdir" && value) outdir = value;
    else
      throw new Error(
        `unknown or incomplete option ${argv[i]}; use --target host,bun-darwin-arm64,bun-linux-x64 --outdir dist`,
      );
  }
  return { targets, outdir };
}

if (import.meta.main) {
  const { targets, outdir } = parseArgs(process.argv.slice(2));
  for (const target of targets) {
    const outfile = join(outdir, target === "host" ? "exo" : `exo-${target.slice("bun-".length)}`);
    const started = performance.now();
    const r = await buildExecutable({ target, outfile });
    const mb = (r.sizeBytes / 2 ** 20).toFixed(1);
    if (r.platform === `${process.platform}-${process.arch}`) smokeTest(outfile, r.version);
    const mlx = r.mlxEmbedded
      ? "MLX addon embedded"
      : "NO MLX addon for this platform (models cannot run; build on that machine)";
    console.log(`${outfile}  ${r.platform}  ${mb} MiB  ${Math.round(performance.now() - started)} ms  ${mlx}`);
  }
}
