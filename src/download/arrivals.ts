// Blobs this process is fetching right now, with how many of their bytes are on disk (written and hashed), so a
// peer may stream one while it arrives: a reader waits for a notification of new bytes, not a poll, and gives up
// only when the bytes stop coming (a deadline tied to progress) or the fetch ends.
import { WakeSet } from "../wake-set.ts";

/** Where a blob being fetched comes from: not chosen yet, the hub, or a peer. */
export type ArrivingFrom = "deciding" | "hub" | "peer";

interface Arrival {
  from: ArrivingFrom;
  /** Bytes of blobs/<etag>.incomplete written and hashed so far. */
  bytes: number;
  wake: WakeSet;
}

/** What a wait for bytes ended with. */
export type ArrivalWait = "ready" | "ended" | "stalled";

const arrivals = new Map<string, Arrival>();

/** The blob at `blobPath` is being fetched from now on (fetch-file.ts marks it before asking peers). */
export function startArrival(blobPath: string): void {
  arrivals.set(blobPath, { from: "deciding", bytes: 0, wake: new WakeSet() });
}

export function arrivalSource(blobPath: string, from: ArrivingFrom): void {
  const a = arrivals.get(blobPath);
  if (a) a.from = from;
}

/** `bytes` of the blob are now on disk (less than before after a restart). Wakes readers waiting for bytes. */
export function arrivedBytes(blobPath: string, bytes: number): void {
  const a = arrivals.get(blobPath);
  if (!a) return;
  const grew = bytes > a.bytes;
  a.bytes = bytes;
  if (grew) a.wake.wakeAll();
}

/** The fetch ended (verified and renamed, or failed): readers waiting on it look again. */
export function endArrival(blobPath: string): void {
  const a = arrivals.get(blobPath);
  arrivals.delete(blobPath);
  a?.wake.wakeAll();
}

export function arrival(blobPath: string): { from: ArrivingFrom; bytes: number } | undefined {
  const a = arrivals.get(blobPath);
  return a && { from: a.from, bytes: a.bytes };
}

/**
 * Waits until `bytes` of the blob are on disk ("ready"), its fetch ends ("ended"), no new byte came for
 * `stallMs` ("stalled"), or `maxMs` passed in all ("stalled": the asker's own deadline comes after that).
 */
export async function waitForBytes(
  blobPath: string,
  bytes: number,
  stallMs: number,
  maxMs: number,
): Promise<ArrivalWait> {
  const started = performance.now();
  let progressAt = started;
  let seen = arrivals.get(blobPath)?.bytes ?? 0;
  for (;;) {
    const a = arrivals.get(blobPath);
    if (!a) return "ended";
    if (a.bytes >= bytes) return "ready";
    const now = performance.now();
    if (a.bytes > seen) {
      seen = a.bytes;
      progressAt = now;
    }
    const left = Math.min(progressAt + stallMs, started + maxMs) - now;
    if (left <= 0) return "stalled";
    await a.wake.wait(left);
  }
}
