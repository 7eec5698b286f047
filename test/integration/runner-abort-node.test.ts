// The must-show at node level: a real native abort in a node's engine runner (armed with EXO_RUNNER_FAULT)
// fails the request in flight with a clear error, the node keeps serving, and the next request succeeds.
import { beforeAll, expect, test } from "bun:test";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";

useNodes();
const MODEL = "exo-tiny-chat";
// The embedded model's byte-level tokenizer encodes "~" as id 126; its chat template never emits it.
const FAULT_CHAR = "~";
const FAULT_TOKEN = 126;
let node: SpawnedNode;

beforeAll(async () => {
  node = await spawnNode({
    args: ["--node-id", "solo", "--port", "0", "--api-port", "0", "--host", "127.0.0.1", "--api-host", "127.0.0.1"],
    env: { EXO_RUNNER_FAULT: `abort-on-token:${FAULT_TOKEN}` },
  });
});

async function chat(content: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`http://127.0.0.1:${node.apiPort}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content }], max_tokens: 4, temperature: 0 }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

test(
  "a native abort in the runner fails only the request in flight; the node stays up and the next request is answered",
  withNodeLogs(async () => {
    const first = await chat("count from 3 to 6");
    expect(first.status).toBe(200);
    const answer = first.body.choices[0].message.content as string;

    const crashed = await chat(`count from 3 to 6 ${FAULT_CHAR}`);
    expect(crashed.status).toBeGreaterThanOrEqual(500);
    expect(crashed.body.error.message).toContain("died with signal SIGABRT ([Matmul::eval_cpu] Currently only supports float32.)");
    expect(node.exitCode()).toBeNull();
    expect((await fetch(`http://127.0.0.1:${node.apiPort}/healthcheck`)).status).toBe(200);

    const after = await chat("count from 3 to 6");
    expect(after.status).toBe(200);
    expect(after.body.choices[0].message.content).toBe(answer);
  }),
  60_000,
);
