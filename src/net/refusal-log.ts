// Failed handshakes logged at a bounded rate: the first few of each window one by one, the rest counted by
// error code and reported in one line when the window ends, so a flood of strangers cannot flood the log.
import type { ErrorCode } from "../errors.ts";

export interface RefusalLog {
  warn(message: string, code: ErrorCode): void;
  /** Report what is still counted and stop the window timer. */
  stop(): void;
}

export function createRefusalLog(
  emit: (line: string) => void,
  opts: { perWindow?: number; windowMs?: number } = {},
): RefusalLog {
  const perWindow = opts.perWindow ?? 20;
  const windowMs = opts.windowMs ?? 5000;
  let logged = 0;
  const suppressed = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const endWindow = () => {
    timer = undefined;
    logged = 0;
    if (suppressed.size === 0) return;
    const total = [...suppressed.values()].reduce((a, b) => a + b, 0);
    const byCode = [...suppressed].map(([code, n]) => `${code} ${n}`).join(", ");
    suppressed.clear();
    emit(
      `refusing link: ${total} more connections failed before or during their handshake in the last ${windowMs / 1000} s (${byCode})`,
    );
  };

  return {
    warn(message, code) {
      if (!timer) {
        timer = setTimeout(endWindow, windowMs);
        timer.unref?.();
      }
      if (logged < perWindow) {
        logged++;
        emit(message);
      } else suppressed.set(code, (suppressed.get(code) ?? 0) + 1);
    },
    stop() {
      clearTimeout(timer);
      endWindow();
    },
  };
}
