// The Linux MLX addon, copied out of an "embedded root" the way the executable does it, loads by its new path.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { copyOut } from "../../src/engine/embedded-assets.ts";

const REPO = resolve(import.meta.dir, "../..");
const tmp = mkdtempSync(join(tmpdir(), "exo-embedded-mlx-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("the MLX addon extracted into a runtime folder loads there and computes, in a fresh process", async () => {
  const root = join(tmp, "root");
  mkdirSync(root);
  copyOut(join(REPO, "node_modules/@frost-beta/mlx/build/Release/mlx.node"), join(root, "mlx.node"));
  const dir = join(tmp, "home", "runtime", "test-build");
  // A separate process: loading a second copy of MLX into this one would share nothing with the first.
  const script = `
    const { loadMlxAddon } = await import(${JSON.stringify(join(REPO, "src/engine/embedded-assets.ts"))});
    const mx = loadMlxAddon({ root: ${JSON.stringify(root)}, dir: ${JSON.stringify(dir)} });
    const sum = mx.add(mx.array([1, 2, 3]), mx.array([10, 20, 30]));
    console.log(JSON.stringify(sum.tolist()));
  `;
  const run = () => Bun.spawnSync([process.execPath, "-e", script], { cwd: tmp, stderr: "pipe" });
  const first = run();
  expect(first.stderr.toString()).toBe("");
  expect(first.stdout.toString().trim()).toBe("[11,22,33]");
  const extracted = statSync(join(dir, "mlx.node"));
  expect(extracted.size).toBe(statSync(join(root, "mlx.node")).size);

  const second = run();
  expect(second.stdout.toString().trim()).toBe("[11,22,33]");
  expect(statSync(join(dir, "mlx.node")).ino).toBe(extracted.ino);
});
