// The must-show at node level: a real native abort in a node's engine runner (armed with EXO_RUNNER_FAULT)
// fails the request in flight with a clear error, the node keeps serving, and the next request succeeds.
import { beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { waitFor } from "../helpers/wait.ts";
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
    expect(crashed.body.error.message).toContain(
      "died with signal SIGABRT ([Matmul::eval_cpu] Currently only supports float32.)",
    );
    expect(node.exitCode()).toBeNull();
    expect((await fetch(`http://127.0.0.1:${node.apiPort}/healthcheck`)).status).toBe(200);

    const after = await chat("count from 3 to 6");
    expect(after.status).toBe(200);
    expect(after.body.choices[0].message.content).toBe(answer);
  }),
  60_000,
);

/** Pids whose parent is `pid` (from /proc/<child>/stat), zombies excluded. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of new Bun.Glob("[0-9]*").scanSync({ cwd: "/proc", onlyFiles: false })) {
    try {
      const [state, ppid] = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]!.split(" ");
      if (Number(ppid) === pid && state !== "Z") out.push(Number(entry));
    } catch {
      // The process ended while we listed /proc.
    }
  }
  return out;
}

test(
  "a node killed with SIGKILL leaves no runner process behind",
  withNodeLogs(async () => {
    expect((await chat("count from 1 to 2")).status).toBe(200);
    const [runnerPid] = childrenOf(node.proc.pid).filter((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("runner"),
    );
    expect(runnerPid).toBeDefined();
    node.kill("SIGKILL");
    await node.proc.exited;
    await waitFor(
      () =>
        !existsSync(`/proc/${runnerPid}`) ||
        readFileSync(`/proc/${runnerPid}/stat`, "utf8").split(") ")[1]!.startsWith("Z"),
      {
        timeoutMs: 5000,
        what: `runner ${runnerPid} to exit after its node`,
      },
    );
  }),
  60_000,
);
