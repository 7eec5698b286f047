// The example peer files shipped in configs/ load, and each JSON file says the same as its YAML twin.
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadPeerFile, peerFileKey, peersOf, selfEntry } from "../../../src/config/peer-file.ts";

const CONFIGS = resolve(import.meta.dir, "../../../configs");
const peerFiles = readdirSync(CONFIGS).filter((f) => /\.(json|ya?ml)$/.test(f) && f !== "models.yaml");

describe("example peer files", () => {
  test("there are JSON and YAML examples for the localhost pair, the LAN cluster and the tunnel", () => {
    for (const name of ["localhost-pair", "lan-3-nodes", "tunnel-pair"]) {
      expect(peerFiles).toContain(`${name}.json`);
      expect(peerFiles).toContain(`${name}.yaml`);
    }
  });

  test.each(peerFiles)("%s is a valid peer file", async (file) => {
    const parsed = await loadPeerFile(join(CONFIGS, file));
    expect(parsed.peers.size).toBeGreaterThanOrEqual(2);
  });

  test.each(["localhost-pair", "lan-3-nodes", "tunnel-pair"])(
    "%s.json and %s.yaml describe the same cluster",
    async (name) => {
      const json = await loadPeerFile(join(CONFIGS, `${name}.json`));
      const yaml = await loadPeerFile(join(CONFIGS, `${name}.yaml`));
      expect(peerFileKey(yaml)).toBe(peerFileKey(json));
    },
  );

  test("the localhost pair is the exo-mlx report's: mac2 on 50051 and test_mac1 on 50061", async () => {
    const file = await loadPeerFile(join(CONFIGS, "localhost-pair.json"));
    expect(selfEntry(file, "mac2")).toMatchObject({ address: "localhost", port: 50051 });
    expect(peersOf(file, "mac2")).toEqual([
      expect.objectContaining({ nodeId: "test_mac1", address: "localhost", port: 50061 }),
    ]);
    expect(selfEntry(file, "test_mac1")?.deviceCapabilities?.memory).toBe(131072);
  });

  test.each(["tunnel-pair.yaml", "localhost-pair.yaml", "demo-3-nodes.yaml"])(
    "nodes sharing one host in %s listen on different ports",
    async (file) => {
      const parsed = await loadPeerFile(join(CONFIGS, file));
      const ports = [...parsed.peers.values()].map((p) => p.port);
      expect(new Set(ports).size).toBe(ports.length);
    },
  );
});
