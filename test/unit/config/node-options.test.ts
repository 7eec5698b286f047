// Node options from flags + environment: defaults, conversions, and errors that name the flag.
import { expect, test } from "bun:test";
import {
  DEFAULT_API_PORT,
  defaultNodeId,
  parseApiClientOptions,
  parseDoctorOptions,
  parseNodeOptions,
} from "../../../src/config/node-options.ts";

test("defaults follow DESIGN §4: API port 52415, peer port left to the peer file, 5 s health checks", () => {
  const o = parseNodeOptions({ "node-id": "mac1" }, { EXO_HOME: "/tmp/exo-home" });
  expect(o.nodeId).toBe("mac1");
  expect(o.port).toBeUndefined();
  expect(o.apiPort).toBe(DEFAULT_API_PORT);
  expect(o.healthIntervalMs).toBe(5000);
  expect(o.healthTimeoutMs).toBe(5000);
  expect(o.requestTimeoutMs).toBe(30_000);
  expect(o.maxFrameBytes).toBe(256 * 1024 * 1024);
  expect(o.exoHome).toBe("/tmp/exo-home");
  expect(o.apiKey).toBeUndefined();
  expect(Object.isFrozen(o)).toBe(true);
});

test("flags are converted; port 0 means any free port; the health timeout defaults to at most the interval", () => {
  const o = parseNodeOptions(
    { "node-id": "n", port: "0", "api-port": "0", "health-interval-ms": "300", config: "peers.yaml" },
    { EXO_API_KEY: "k" },
  );
  expect([o.port, o.apiPort, o.healthIntervalMs, o.healthTimeoutMs, o.configPath, o.apiKey]).toEqual([
    0,
    0,
    300,
    300,
    "peers.yaml",
    "k",
  ]);
});

test("bad flag values are refused with the flag's name", () => {
  expect(() => parseNodeOptions({ port: "70000" }, {})).toThrow('--port: expected an integer 0-65535, got "70000"');
  expect(() => parseNodeOptions({ "api-port": "http" }, {})).toThrow("--api-port");
  expect(() => parseNodeOptions({ "health-interval-ms": "1.5" }, {})).toThrow("--health-interval-ms");
  expect(() => parseNodeOptions({ "node-id": "a b" }, {})).toThrow("--node-id");
  expect(() => parseDoctorOptions({ count: "0" })).toThrow("--count");
});

test("admission: --max-live defaults to the engine's 32, --queue-size to 256 (0: no queue), --kv-cache-mb to off", () => {
  const d = parseNodeOptions({ "node-id": "n" }, {});
  expect([d.maxLive, d.queueSize]).toEqual([32, 256]);
  const o = parseNodeOptions({ "node-id": "n", "max-live": "2", "queue-size": "0" }, {});
  expect([o.maxLive, o.queueSize]).toEqual([2, 0]);
  expect(() => parseNodeOptions({ "max-live": "0" }, {})).toThrow('--max-live: expected an integer 1-4096, got "0"');
  expect(() => parseNodeOptions({ "queue-size": "-1" }, {})).toThrow("--queue-size");
  // KV-aware admission is off unless given a budget (0 is off too).
  expect(d.kvCacheMb).toBeUndefined();
  expect(parseNodeOptions({ "kv-cache-mb": "0" }, {}).kvCacheMb).toBeUndefined();
  expect(parseNodeOptions({ "kv-cache-mb": "2048" }, {}).kvCacheMb).toBe(2048);
  expect(() => parseNodeOptions({ "kv-cache-mb": "lots" }, {})).toThrow("--kv-cache-mb");
});

test("the default node id is the host name's first label, made safe and stable", () => {
  expect(defaultNodeId("Mac-Studio.local")).toBe("mac-studio");
  expect(defaultNodeId("my box!")).toBe("my-box");
  expect(defaultNodeId("...")).toBe("node");
  expect(defaultNodeId("Mac-Studio.local")).toBe(defaultNodeId("Mac-Studio.local"));
});

test("exo topology's API address and key come from flags and EXO_API_KEY", () => {
  expect(parseApiClientOptions({}, {})).toEqual({ baseUrl: "http://127.0.0.1:52415", apiKey: undefined });
  expect(parseApiClientOptions({ "api-host": "::1", "api-port": "9000" }, { EXO_API_KEY: "s" })).toEqual({
    baseUrl: "http://[::1]:9000",
    apiKey: "s",
  });
});
