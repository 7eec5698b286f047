// The prepare progress line of `exo run`: per-node phases, redrawn on a terminal, coarse when piped.
import { asModelId, asNodeId } from "../../../src/ids.ts";
import { describe, expect, test } from "bun:test";
import { makePrepareProgress, renderPrepareLine } from "../../../src/cli/prepare-progress.ts";
import type { StatusFields } from "../../../src/cluster/messages.ts";

const status = (nodeId: string, phase: StatusFields["phase"], fraction: number): StatusFields => ({
  nodeId: asNodeId(nodeId),
  modelId: asModelId("m"),
  phase,
  fraction,
});

describe("renderPrepareLine", () => {
  test("shows each node's phase and percent in node order", () => {
    const line = renderPrepareLine("m", [
      status("b", "load", 0.5),
      status("a", "download", 0.257),
      status("c", "ready", 1),
    ]);
    expect(line).toBe("preparing m: a downloading 25%, b loading 50%, c ready");
  });

  test("says where each node's download bytes came from (its progress's sources)", () => {
    const fromPeer = { ...status("c", "download", 0.5), progress: { sources: { a: 1024, hub: 0 } } };
    const mixed = { ...status("d", "download", 0.9), progress: { sources: { hub: 10, b: 20 } } };
    expect(renderPrepareLine("m", [fromPeer, mixed, status("e", "download", 0)])).toBe(
      "preparing m: c downloading 50% from peer a, d downloading 90% from hub, peer b, e downloading 0%",
    );
  });

  test("says planning before any node reported", () => {
    expect(renderPrepareLine("m", [])).toBe("preparing m: planning");
  });
});

describe("makePrepareProgress", () => {
  test("redraws one line in place on a terminal and ends it with a newline", () => {
    const out: string[] = [];
    const p = makePrepareProgress("m", { write: (t) => out.push(t), isTTY: true });
    p.onProgress(status("a", "download", 0.1));
    p.onProgress(status("a", "download", 0.1));
    p.onProgress(status("a", "ready", 1));
    p.finish();
    expect(out).toEqual(["\r\x1b[Kpreparing m: a downloading 10%", "\r\x1b[Kpreparing m: a ready", "\n"]);
  });

  test("prints a new line only on 10% steps when piped, and ignores other models", () => {
    const out: string[] = [];
    const p = makePrepareProgress("m", { write: (t) => out.push(t) });
    for (let i = 0; i <= 20; i++) p.onProgress(status("a", "download", i / 100));
    p.onProgress({ ...status("a", "ready", 1), modelId: asModelId("other") });
    p.finish();
    expect(out).toEqual([
      "preparing m: a downloading 0%\n",
      "preparing m: a downloading 10%\n",
      "preparing m: a downloading 20%\n",
    ]);
  });
});
