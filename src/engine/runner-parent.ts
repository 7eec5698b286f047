// The runner's side of "no orphans": exit as soon as the node that started it is gone, even mid-eval.
// Linux: the kernel delivers SIGKILL on parent death (prctl PR_SET_PDEATHSIG); elsewhere a ppid poll.
import { dlopen, FFIType } from "bun:ffi";
import { logger } from "../log.ts";

const log = logger("engine");
const PR_SET_PDEATHSIG = 1;
const SIGKILL = 9;
const POLL_MS = 500;

/** Watches `parentPid`; returns a function that stops the watch. Without a pid it only relies on stdin EOF. */
export function watchParent(parentPid: number | undefined): () => void {
  if (parentPid === undefined) return () => {};
  if (process.platform === "linux") setDeathSignal();
  // The parent may have died before the watch began; the poll also covers systems without prctl.
  const timer = setInterval(() => {
    if (process.ppid !== parentPid) {
      log.warn(`runner ${process.pid}: parent ${parentPid} is gone, exiting`);
      process.kill(process.pid, "SIGKILL");
    }
  }, POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

function setDeathSignal(): void {
  try {
    const libc = dlopen("libc.so.6", {
      prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
    });
    const rc = libc.symbols.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (rc !== 0) log.warn(`runner ${process.pid}: prctl(PR_SET_PDEATHSIG) failed; relying on the parent poll`);
  } catch (err) {
    log.warn(`runner ${process.pid}: no prctl (${(err as Error).message}); relying on the parent poll`);
  }
}
