// Extraction of the executable's embedded files (MLX addon, default model) into a versioned folder.
import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { embeddedModelDir } from "../../../src/catalog/embedded.ts";
import { embeddedRoot } from "../../../src/embedded-root.ts";
import {
  copyOut,
  loadMlxAddon,
  missingMlxAddon,
  pruneRuntimeDirs,
  realModelDir,
  runtimeDir,
} from "../../../src/engine/embedded-assets.ts";
import { VERSION } from "../../../src/version.ts";

const tmp = mkdtempSync(join(tmpdir(), "exo-embedded-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A fake embedded root: a model folder and an (unloadable) addon. */
function makeRoot(name: string): string {
  const root = join(tmp, name, "root");
  mkdirSync(join(root, "default-model", "sub"), { recursive: true });
  writeFileSync(join(root, "default-model", "config.json"), '{"model_type":"llama"}');
  writeFileSync(join(root, "default-model", "sub", "weights.bin"), new Uint8Array(4096).fill(7));
  return root;
}

describe("embedded assets", () => {
  test("the runtime folder is named by version and build id, under EXO_HOME/runtime", () => {
    expect(runtimeDir("/home/u/.cache/exo", "1.2.3-abc")).toBe("/home/u/.cache/exo/runtime/1.2.3-abc");
    expect(runtimeDir("/h")).toStartWith(`/h/runtime/${VERSION}-`);
  });

  test("the embedded root is recognised only inside a compiled executable", () => {
    expect(embeddedRoot("/$bunfs/root")).toBe("/$bunfs/root");
    expect(embeddedRoot("B:\\~BUN\\root")).toBe("B:\\~BUN\\root");
    expect(embeddedRoot(import.meta.dir)).toBeUndefined();
  });

  test("the embedded model is read from the executable when compiled and from configs/ from sources", () => {
    expect(embeddedModelDir("/$bunfs/root")).toBe("/$bunfs/root/default-model");
    expect(embeddedModelDir()).toEndWith(join("configs", "default-model"));
  });

  test("a model folder is copied out whole, with the same bytes", () => {
    const root = makeRoot("copy");
    const dir = realModelDir(join(root, "default-model"), { root, dir: join(tmp, "copy", "rt") });
    expect(dir).toBe(join(tmp, "copy", "rt", "default-model"));
    expect(readFileSync(join(dir, "config.json"), "utf8")).toBe('{"model_type":"llama"}');
    expect(readFileSync(join(dir, "sub", "weights.bin"))).toEqual(Buffer.from(new Uint8Array(4096).fill(7)));
  });

  test("copying again leaves existing files untouched and no temporary files behind", () => {
    const root = makeRoot("again");
    const at = { root, dir: join(tmp, "again", "rt") };
    const dir = realModelDir(join(root, "default-model"), at);
    const before = statSync(join(dir, "sub", "weights.bin"));
    writeFileSync(join(root, "default-model", "sub", "weights.bin"), new Uint8Array(4096).fill(9));
    realModelDir(join(root, "default-model"), at);
    const after = statSync(join(dir, "sub", "weights.bin"));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(readdirSync(join(dir, "sub"))).toEqual(["weights.bin"]);
  });

  test("a truncated copy (same folder, different size) is replaced", () => {
    const root = makeRoot("truncated");
    const at = { root, dir: join(tmp, "truncated", "rt") };
    const dir = realModelDir(join(root, "default-model"), at);
    writeFileSync(join(dir, "sub", "weights.bin"), new Uint8Array(10));
    realModelDir(join(root, "default-model"), at);
    expect(statSync(join(dir, "sub", "weights.bin")).size).toBe(4096);
  });

  test("a model directory outside the embedded root is used where it is", () => {
    const root = makeRoot("outside");
    const elsewhere = join(tmp, "my-model");
    expect(realModelDir(elsewhere, { root, dir: join(tmp, "outside", "rt") })).toBe(elsewhere);
    expect(existsSync(join(tmp, "outside", "rt"))).toBe(false);
  });

  test("a single file is copied to the given path", () => {
    const root = makeRoot("file");
    const to = join(tmp, "file", "config-copy.json");
    expect(copyOut(join(root, "default-model", "config.json"), to)).toBe(to);
    expect(readFileSync(to, "utf8")).toBe('{"model_type":"llama"}');
  });

  test("an executable without an MLX addon says what is missing and how to build one", () => {
    const root = makeRoot("no-addon");
    let err: unknown;
    try {
      loadMlxAddon({ root, dir: join(tmp, "no-addon", "rt") });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "E_MLX_UNAVAILABLE" });
    const message = (err as Error).message;
    expect(message).toContain(`no MLX addon for ${process.platform}-${process.arch}`);
    expect(message).toContain("bun run build");
    expect(message).toContain("doctor");
  });

  test("old extraction folders are pruned, newest kept, whatever their names", () => {
    const runtime = join(tmp, "prune", "runtime");
    const names = ["0.1.0-aaa", "0.2.0-bbb", "0.1.5-ccc", "0.3.0-ddd", "0.0.9-eee"];
    names.forEach((name, i) => {
      mkdirSync(join(runtime, name), { recursive: true });
      writeFileSync(join(runtime, name, "mlx.node"), "x");
      utimesSync(join(runtime, name), 1_000 + i * 100, 1_000 + i * 100);
    });
    const removed = pruneRuntimeDirs(runtime, 3);
    expect(removed.map((p) => p.split("/").at(-1)).sort()).toEqual(["0.1.0-aaa", "0.2.0-bbb"]);
    expect(readdirSync(runtime).sort()).toEqual(["0.0.9-eee", "0.1.5-ccc", "0.3.0-ddd"]);
  });

  test("a missing addon is noticed up front only inside an executable that lacks it", () => {
    const root = makeRoot("check");
    expect(missingMlxAddon(root)).toContain("carries no MLX addon");
    writeFileSync(join(root, "mlx.node"), "x");
    expect(missingMlxAddon(root)).toBeUndefined();
    expect(missingMlxAddon()).toBeUndefined();
  });

  test("an addon that cannot be loaded is reported with its path", () => {
    const root = makeRoot("bad-addon");
    writeFileSync(join(root, "mlx.node"), "not a shared object");
    expect(() => loadMlxAddon({ root, dir: join(tmp, "bad-addon", "rt") })).toThrow(/cannot load MLX from .*mlx\.node/);
  });
});
