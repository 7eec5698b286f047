// A node's load as its peers see it: the admission queue's depth, the requests it runs and its engine's batch
// sizes ride on STATUS as one optional `load` object. Old peers ignore fields they do not know, so their STATUS
// parsing stays valid; a STATUS without `load` (an old peer's) simply reports none. Sent after admission changes,
// at most every REPORT_EVERY_MS (the last change always goes out), and only by a node whose engine holds a shard
// it is not re-preparing or downloading more of (POST /download): STATUS is per model and says `ready` for it,
// which must stay true (a peer that hears `ready` stops serving this node that model's files, peer-grants.ts).
import type { NodeId } from "../ids.ts";
import { logger } from "../log.ts";
import type { ShardEngine } from "../engine/types.ts";
import type { PeerTransport } from "../net/transport.ts";
import type { AdmissionQueue } from "./admission-queue.ts";
import type { LoadFields, StatusFields } from "./messages.ts";

const log = logger("cluster");
const REPORT_EVERY_MS = 250;

export interface LoadReporter {
  /** Note a STATUS heard (from a peer or itself). */
  heard(status: StatusFields): void;
  /** Each peer's last reported load, with the age of the report. */
  peers(): Record<string, LoadFields & { ageMs: number }>;
  /** This node's load now (also what it sends). */
  local(): Promise<LoadFields>;
  /** Send a pending report now; resolves once it is handed to every link (tests). */
  flush(): Promise<void>;
  stop(): void;
}

export function createLoadReporter(opts: {
  transport: PeerTransport;
  engine: ShardEngine;
  admission: AdmissionQueue;
  /** True while this node prepares a shard (its STATUS then reports that phase instead). */
  preparing(): boolean;
}): LoadReporter {
  const { transport, engine, admission } = opts;
  const heard = new Map<NodeId, { load: LoadFields; at: number }>();
  /** Models this node said it is downloading (its own STATUS, which it hears too) and has not finished. */
  const downloading = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastSent = 0;
  let dirty = false;

  async function local(): Promise<LoadFields> {
    const { queued, running } = admission.stats();
    const batch = await engine.batchStats?.().catch(() => undefined);
    return { queued, running, ...(batch ? { lastBatch: batch.lastBatch, peakBatch: batch.peakBatch } : {}) };
  }

  async function send(): Promise<void> {
    const shard = engine.loaded();
    if (!shard || opts.preparing() || downloading.has(shard.modelId)) return;
    const status = { nodeId: transport.selfId, modelId: shard.modelId, phase: "ready", fraction: 1 };
    const fields = { ...status, load: await local() };
    await Promise.all(
      transport
        .peersUp()
        .map((peer) =>
          transport.send(peer, "STATUS", fields).catch(() => log.debug(`load STATUS to ${peer} not delivered`)),
        ),
    );
  }

  function sendNow(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!dirty) return Promise.resolve();
    dirty = false;
    lastSent = performance.now();
    return send();
  }

  /** Throttled: one report now if the last was long enough ago, else one when the interval is over. */
  function schedule(): void {
    dirty = true;
    if (timer) return;
    const wait = Math.max(0, lastSent + REPORT_EVERY_MS - performance.now());
    timer = setTimeout(() => void sendNow(), wait);
    timer.unref?.();
  }

  const unsubscribe = admission.onChange(schedule);
  return {
    heard(status) {
      if (status.nodeId === transport.selfId && !status.load) {
        if (status.phase === "download" && status.fraction < 1) downloading.add(status.modelId);
        else downloading.delete(status.modelId);
      }
      if (status.nodeId === transport.selfId || !status.load) return;
      heard.set(status.nodeId, { load: status.load, at: performance.now() });
    },
    peers() {
      const now = performance.now();
      const up = new Set(transport.peersUp());
      return Object.fromEntries(
        [...heard]
          .filter(([id]) => up.has(id))
          .map(([id, { load, at }]) => [id, { ...load, ageMs: Math.round(now - at) }]),
      );
    },
    local,
    flush: sendNow,
    stop() {
      unsubscribe();
      if (timer) clearTimeout(timer);
    },
  };
}
