// Health checks: every interval, one HEALTH round trip to every peer at once. A miss closes the peer's
// links (it is marked down and re-dialled); a tick also re-dials configured peers that lost their link.
import { errorCode } from "../errors.ts";
import { logger } from "../log.ts";
import type { PeerPool } from "./peer-pool.ts";

const log = logger("net");

export interface HealthMonitor {
  /** One round now, all peers concurrently; resolves when every check ended. */
  checkNow(): Promise<void>;
  stop(): void;
}

/** Start checking `pool`'s peers every `intervalMs` (rounds never overlap). */
export function startHealthChecks(pool: PeerPool, intervalMs: number): HealthMonitor {
  let running: Promise<void> | undefined;
  const round = async (): Promise<void> => {
    pool.redialIdle();
    await Promise.all(
      pool.peersUp().map(async (peer) => {
        const started = performance.now();
        try {
          await pool.request(peer, "HEALTH");
          pool.reportHealth(peer, true, performance.now() - started);
        } catch (err) {
          const reason = `${errorCode(err)}: ${err instanceof Error ? err.message : String(err)}`;
          log.warn(`health check of ${peer} failed: ${reason}`);
          pool.reportHealth(peer, false, performance.now() - started, reason);
        }
      }),
    );
  };
  const checkNow = (): Promise<void> => {
    running ??= round().finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void checkNow(), intervalMs);
  return { checkNow, stop: () => clearInterval(timer) };
}
