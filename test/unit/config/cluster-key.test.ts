// The cluster key: keygen's output, what a valid key is, where it is read from (flag > env > peer file), and
// the peer file's `cluster_key` (exo's files without it stay valid; a changed key is a changed file).
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateClusterKey, loadClusterKey, parseClusterKey } from "../../../src/config/cluster-key.ts";
import { parsePeerFile, peerFileKey } from "../../../src/config/peer-file.ts";

const dir = mkdtempSync(join(tmpdir(), "exo-key-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const K1 = "a".repeat(40);
const K2 = "b".repeat(40);

describe("cluster key", () => {
  test("keygen prints 256 random bits as 43 base64url characters, different every time", () => {
    const keys = new Set(Array.from({ length: 20 }, generateClusterKey));
    expect(keys.size).toBe(20);
    for (const k of keys) {
      expect(k).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(k, "base64url").length).toBe(32);
      expect(parseClusterKey(k, "test").bytes.length).toBe(43);
    }
  });

  test("refuses short keys and keys with spaces, naming the source but never the key", () => {
    expect(() => parseClusterKey("short-secret", "EXO_CLUSTER_KEY")).toThrow(/EXO_CLUSTER_KEY: .*at least 32/);
    expect(() => parseClusterKey(`${"x".repeat(20)} ${"y".repeat(20)}`, "f")).toThrow("no spaces");
    try {
      parseClusterKey("short-secret", "EXO_CLUSTER_KEY");
    } catch (err) {
      expect((err as Error).message).not.toContain("short-secret");
    }
  });

  test("--cluster-key-file beats EXO_CLUSTER_KEY, which beats the peer file; none means keyless", async () => {
    const file = join(dir, "key.txt");
    writeFileSync(file, `${K1}\n`);
    const peerFile = { key: K2, fileName: "peers.yaml" };
    const fromFlag = await loadClusterKey({ keyFile: file, env: K2, peerFile });
    expect(Buffer.from(fromFlag!.bytes).toString()).toBe(K1);
    expect(fromFlag!.source).toBe(`--cluster-key-file ${file}`);
    expect((await loadClusterKey({ env: K1, peerFile }))!.source).toBe("EXO_CLUSTER_KEY");
    expect((await loadClusterKey({ peerFile }))!.source).toBe("peers.yaml: cluster_key");
    expect(await loadClusterKey({ peerFile: { fileName: "p.json" } })).toBeUndefined();
    await expect(loadClusterKey({ keyFile: join(dir, "missing") })).rejects.toMatchObject({ code: "E_CONFIG_READ" });
  });

  test("the peer file's cluster_key is read from YAML and JSON, and changes the file's key", () => {
    const peers = "peers:\n  a: { address: 10.0.0.1, port: 50051 }\n";
    const yaml = parsePeerFile(`cluster_key: ${K1}\n${peers}`, "p.yaml");
    const json = parsePeerFile(
      JSON.stringify({ cluster_key: K1, peers: { a: { address: "10.0.0.1", port: 50051 } } }),
      "p.json",
    );
    const exo = parsePeerFile(peers, "p.yaml");
    expect(yaml.clusterKey).toBe(K1);
    expect(json.clusterKey).toBe(K1);
    expect(exo.clusterKey).toBeUndefined();
    expect(peerFileKey(yaml)).not.toBe(peerFileKey(exo));
    expect(peerFileKey(yaml)).not.toBe(peerFileKey(parsePeerFile(`cluster_key: ${K2}\n${peers}`, "p.yaml")));
    expect(() => parsePeerFile(`cluster_key: 12\n${peers}`, "p.yaml")).toThrow("cluster_key: expected a string");
  });
});
