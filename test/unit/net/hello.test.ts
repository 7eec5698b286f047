// The HELLO checks: what is refused and that the reason names both sides.
import { expect, test } from "bun:test";
import { encodeHello, parseHello, type Hello } from "../../../src/net/hello.ts";

const mine: Hello = { nodeId: "a", protocol: 1, version: "0.1.0", port: 50051 };
const theirs = (over: Record<string, unknown> = {}) => ({
  ...encodeHello({ nodeId: "b", protocol: 1, version: "0.1.0", port: 50052 }),
  ...over,
});

test("a matching HELLO is read back with its capabilities and probe flag", () => {
  const caps = { model: "Mac", chip: "Apple M3", memory: 8192, flops: { fp32: 3.55, fp16: 7.1, int8: 14.2 } };
  const h = parseHello(
    { ...encodeHello({ nodeId: "b", protocol: 1, version: "0.1.0", port: 0, capabilities: caps, probe: true }, "a") },
    mine,
  );
  expect(h).toEqual({ nodeId: "b", protocol: 1, version: "0.1.0", port: 0, capabilities: caps, probe: true });
});

test("mismatches and malformed HELLOs are refused with a reason naming both nodes", () => {
  const cases: [Record<string, unknown>, string][] = [
    [theirs({ protocol: 2 }), "node b speaks protocol 2, node a speaks protocol 1"],
    [theirs({ version: "0.2.0" }), "node b runs exo 0.2.0, node a runs exo 0.1.0"],
    [theirs({ node_id: "a" }), "same node id"],
    [theirs({ node_id: "" }), "without a node_id"],
    [theirs({ port: 70000 }), "invalid listen port 70000"],
    [theirs({ version: undefined }), "no build version"],
  ];
  for (const [fields, words] of cases) expect(() => parseHello(fields, mine)).toThrow(words);
});
