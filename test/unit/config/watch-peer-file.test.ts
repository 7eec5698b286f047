// Hot reload on real files in a temp dir: peers added and removed, broken edits reported once, atomic rename-over.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeError } from "../../../src/errors.ts";
import { loadPeerFile, type PeerFile } from "../../../src/config/peer-file.ts";
import { watchPeerFile } from "../../../src/config/watch-peer-file.ts";

const yamlOf = (peers: Record<string, number>) =>
  "peers:\n" +
  Object.entries(peers)
    .map(([id, port]) => `  ${id}: { address: localhost, port: ${port} }\n`)
    .join("");

/** Poll `cond` until true or fail after `timeoutMs` (no fixed sleeps). */
async function until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

let dir: string;
let path: string;
let stop: (() => void) | undefined;
let changes: PeerFile[];
let errors: NodeError[];
const ids = () => [...(changes.at(-1)?.peers.keys() ?? [])];

async function startWatching(): Promise<void> {
  const initial = await loadPeerFile(path);
  stop = watchPeerFile(
    path,
    { onChange: (f) => changes.push(f), onError: (e) => errors.push(e) },
    { initial, debounceMs: 50 },
  );
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "exo-watch-"));
  path = join(dir, "peers.yaml");
  writeFileSync(path, yamlOf({ a: 50051, b: 50052 }));
  changes = [];
  errors = [];
});

afterEach(() => {
  stop?.();
  stop = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe("watchPeerFile", () => {
  test("reports an added peer, then its removal", async () => {
    await startWatching();
    writeFileSync(path, yamlOf({ a: 50051, b: 50052, c: 50053 }));
    await until(() => ids().includes("c"), "peer c to appear");
    writeFileSync(path, yamlOf({ a: 50051, b: 50052 }));
    await until(() => changes.length === 2, "peer c to be removed");
    expect(ids()).toEqual(["a", "b"]);
    expect(errors).toEqual([]);
  });

  test("reports a broken edit once, keeps quiet on re-saves, and recovers on the next good edit", async () => {
    await startWatching();
    writeFileSync(path, yamlOf({ a: 50051, b: 70000 }));
    await until(() => errors.length === 1, "the error report");
    expect(errors[0]?.code).toBe("E_CONFIG_INVALID");
    expect(errors[0]?.message).toContain("peers.b.port: expected an integer 1-65535, got 70000");
    // Re-saves of the same broken content, spaced so each is its own burst of fs events: still one report.
    for (let i = 0; i < 3; i++) {
      await Bun.sleep(120); // spacing the writes past the 50 ms debounce, not waiting for a result
      writeFileSync(path, `${yamlOf({ a: 50051, b: 70000 }) + "#".repeat(i)}\n`);
    }
    writeFileSync(path, yamlOf({ c: 50053 }));
    await until(() => changes.length === 1, "the fixed config");
    expect(errors).toHaveLength(1);
    expect(ids()).toEqual(["c"]);
  });

  test("keeps the last good config when the file becomes bad YAML", async () => {
    await startWatching();
    writeFileSync(path, "peers:\n  a: [oops\n");
    await until(() => errors.length === 1, "the YAML error");
    expect(errors[0]?.message).toContain("invalid YAML");
    expect(changes).toEqual([]);
  });

  test("keeps the last good config when an exo JSON edit lists a node id twice, naming the id", async () => {
    await startWatching();
    writeFileSync(path, '{"peers": {"a": {"address": "h", "port": 1}, "a": {"address": "h", "port": 2}}}');
    await until(() => errors.length === 1, "the duplicate-id error");
    expect(errors[0]?.message).toContain('node id "a" is listed twice');
    expect(changes).toEqual([]);
  });

  test("follows an atomic rename over the file", async () => {
    await startWatching();
    const tmp = join(dir, ".peers.yaml.tmp");
    writeFileSync(tmp, yamlOf({ z: 50099 }));
    renameSync(tmp, path);
    await until(() => ids().includes("z"), "the renamed-in config");
    // The watch survives the rename: a second atomic replace is seen too.
    writeFileSync(tmp, yamlOf({ y: 50098 }));
    renameSync(tmp, path);
    await until(() => ids().includes("y"), "the second renamed-in config");
    expect(errors).toEqual([]);
  });

  test("reports a deleted file once as E_CONFIG_READ", async () => {
    await startWatching();
    rmSync(path);
    await until(() => errors.length === 1, "the read error");
    expect(errors[0]?.code).toBe("E_CONFIG_READ");
    writeFileSync(path, yamlOf({ a: 50051 }));
    await until(() => changes.length === 1, "the restored file");
    expect(errors).toHaveLength(1);
  });

  test("hands over the first good config when started without one", async () => {
    stop = watchPeerFile(
      path,
      { onChange: (f) => changes.push(f), onError: (e) => errors.push(e) },
      { debounceMs: 50 },
    );
    await until(() => changes.length === 1, "the initial config");
    expect(ids()).toEqual(["a", "b"]);
  });

  test("ignores other files in the same directory", async () => {
    await startWatching();
    writeFileSync(join(dir, "other.yaml"), "not: [valid\n");
    writeFileSync(path, yamlOf({ a: 50051, d: 50054 }));
    await until(() => changes.length === 1, "the real change");
    expect(ids()).toEqual(["a", "d"]);
    expect(errors).toEqual([]);
  });
});
