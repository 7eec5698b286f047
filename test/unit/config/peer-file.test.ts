// Peer file parsing: exo's JSON unchanged, the YAML equivalent, and invalid files naming file + key path.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isNodeError } from "../../../src/errors.ts";
import { loadPeerFile, parsePeerFile, peerFileKey, peersOf, selfEntry } from "../../../src/config/peer-file.ts";

const fixtures = join(import.meta.dir, "../../fixtures/peers");
const fixture = (name: string) => Bun.file(join(fixtures, name)).text();

async function parseError(name: string): Promise<{ code: string; message: string }> {
  try {
    parsePeerFile(await fixture(name), name);
  } catch (err) {
    if (isNodeError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error(`${name} parsed without error`);
}

describe("parsePeerFile", () => {
  test("accepts exo's manual-discovery JSON from the original report unchanged", async () => {
    const file = parsePeerFile(await fixture("exo-report.json"), "exo-report.json");
    expect([...file.peers.keys()]).toEqual(["mac2", "test_mac1"]);
    expect(file.peers.get("mac2")).toEqual({
      address: "localhost",
      port: 50051,
      deviceCapabilities: {
        model: "Mac Studio",
        chip: "Apple M2 Ultra",
        memory: 196608,
        flops: { fp32: 26.98, fp16: 53.96, int8: 107.92 },
      },
    });
    expect(file.peers.get("test_mac1")?.port).toBe(50061);
  });

  test("reads the YAML equivalent to the same content as the JSON", async () => {
    const json = parsePeerFile(await fixture("exo-report.json"), "exo-report.json");
    const yaml = parsePeerFile(await fixture("exo-report.yaml"), "exo-report.yaml");
    expect(peerFileKey(yaml)).toBe(peerFileKey(json));
  });

  test("accepts exo's own test config with zero memory and unknown chips", async () => {
    const file = parsePeerFile(await fixture("exo-test-config.json"), "test_config.json");
    expect(file.peers.get("node2")).toMatchObject({
      port: 50052,
      deviceCapabilities: { memory: 0, chip: "Unknown Chip" },
    });
  });

  test("makes capabilities optional and reads a numeric string port as exo's pydantic did", async () => {
    const file = parsePeerFile(await fixture("minimal.yaml"), "minimal.yaml");
    expect(file.peers.get("a")).toEqual({ address: "10.0.0.1", port: 50051 });
    expect(file.peers.get("b")).toEqual({ address: "b.local", port: 50052 });
  });

  test("sniffs the format when the file name has no known extension", () => {
    const json = parsePeerFile('{"peers":{"x":{"address":"h","port":1}}}', "peers");
    const yaml = parsePeerFile("peers:\n  x: {address: h, port: 1}\n", "peers");
    expect(peerFileKey(json)).toBe(peerFileKey(yaml));
  });

  test("returns a frozen result", async () => {
    const file = parsePeerFile(await fixture("exo-report.json"), "exo-report.json");
    expect(Object.isFrozen(file)).toBe(true);
    expect(Object.isFrozen(file.peers.get("mac2"))).toBe(true);
    expect(Object.isFrozen(file.peers.get("mac2")?.deviceCapabilities?.flops)).toBe(true);
  });

  test("accepts an empty peers map (a one-node cluster)", () => {
    expect(parsePeerFile("peers: {}\n", "one.yaml").peers.size).toBe(0);
  });

  const invalid: Array<[string, string[]]> = [
    ["bad-yaml.yaml", ["bad-yaml.yaml: invalid YAML", "at line 5, column 3"]],
    ["bad-json.json", ["bad-json.json: invalid JSON"]],
    ["missing-port.yaml", ["missing-port.yaml: peers.mac2.port: expected an integer 1-65535, got nothing"]],
    ["port-out-of-range.json", ["port-out-of-range.json: peers.mac2.port: expected an integer 1-65535, got 70000"]],
    [
      "wrong-types.yaml",
      [
        "wrong-types.yaml: 4 problems",
        "peers.mac2.address: expected a non-empty string, got 12",
        "peers.mac2.port: expected an integer 1-65535, got 50051.5",
        'peers.mac2.device_capabilities.memory: expected an integer >= 0, got "lots"',
        'peers.mac2.device_capabilities.flops.int8: expected a number >= 0, got "many"',
      ],
    ],
    ["unknown-shape.json", ['unknown-shape.json: (root): expected an object with a "peers" map, got a list']],
    ["peers-not-a-map.yaml", ["peers-not-a-map.yaml: peers: expected a map of node id → {address, port}, got nothing"]],
  ];
  for (const [name, fragments] of invalid) {
    test(`rejects ${name} with E_CONFIG_INVALID naming the file and key path`, async () => {
      const err = await parseError(name);
      expect(err.code).toBe("E_CONFIG_INVALID");
      for (const fragment of fragments) expect(err.message).toContain(fragment);
    });
  }

  test("rejects an empty file", () => {
    expect(() => parsePeerFile("  \n", "empty.json")).toThrow("empty.json: the file is empty");
  });

  test("rejects a node id listed twice, in YAML and in exo's JSON alike, naming the id and the line", () => {
    const yaml = "peers:\n  a: {address: h, port: 1}\n  b: {address: h, port: 3}\n  a: {address: h, port: 2}\n";
    expect(() => parsePeerFile(yaml, "dup.yaml")).toThrow(
      'dup.yaml: peers.a: node id "a" is listed twice (again at line 4); list each node once',
    );
    const json = '{"peers": {\n "a": {"address": "h", "port": 1},\n "a": {"address": "h", "port": 2}\n}}';
    expect(() => parsePeerFile(json, "dup.json")).toThrow(
      'dup.json: peers.a: node id "a" is listed twice (again at line 3); list each node once',
    );
    // The same key at another level (a peer's own fields) is no duplicate.
    const fine = '{"peers": {"a": {"address": "a", "port": 1}, "port": {"address": "h", "port": 2}}}';
    expect(parsePeerFile(fine, "fine.json").peers.size).toBe(2);
  });
});

describe("loadPeerFile", () => {
  test("loads a file from disk", async () => {
    const file = await loadPeerFile(join(fixtures, "exo-report.yaml"));
    expect(file.peers.size).toBe(2);
  });

  test("throws E_CONFIG_READ naming the path when the file is missing", async () => {
    const path = join(fixtures, "does-not-exist.yaml");
    const err = await loadPeerFile(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isNodeError(err) && err.code).toBe("E_CONFIG_READ");
    expect(String((err as Error).message)).toContain(path);
  });
});

describe("self and peers", () => {
  test("splits the node's own entry from the peers it should link to", async () => {
    const file = parsePeerFile(await fixture("exo-report.json"), "exo-report.json");
    expect(selfEntry(file, "mac2")?.port).toBe(50051);
    expect(peersOf(file, "mac2").map((p) => [p.nodeId, p.port])).toEqual([["test_mac1", 50061]]);
    expect(selfEntry(file, "elsewhere")).toBeUndefined();
    expect(peersOf(file, "elsewhere")).toHaveLength(2);
  });
});
