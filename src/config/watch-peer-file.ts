// Hot reload of the peer file: watches its directory (so atomic rename-over works), debounces the
// bursts editors produce, hands over each changed good config, and reports each broken version once.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { NodeError } from "../errors.ts";
import { loadPeerFile, peerFileKey, type PeerFile } from "./peer-file.ts";

export interface PeerFileHandlers {
  /** A valid config that differs from the last one handed over (or from `initial`). */
  onChange(file: PeerFile): void;
  /** The file became unreadable or invalid; the last good config stays in force. Called once per broken version. */
  onError(err: NodeError): void;
}

export interface WatchOptions {
  /** The config already in force; without it the first good read is reported through onChange. */
  initial?: PeerFile;
  /** Quiet time after the last fs event before the file is read again. */
  debounceMs?: number;
}

/**
 * Watch `path` for changes; returns stop(). The file is re-read once right away, so an edit made
 * between the caller's first load and this call is not lost.
 * @throws NodeError E_CONFIG_READ when the file's directory cannot be watched
 */
export function watchPeerFile(path: string, handlers: PeerFileHandlers, opts: WatchOptions = {}): () => void {
  const full = resolve(path);
  const name = basename(full);
  const debounceMs = opts.debounceMs ?? 150;
  let lastGoodKey = opts.initial ? peerFileKey(opts.initial) : undefined;
  let lastErrorMessage: string | undefined;
  let suspectMessage: string | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let reading = false;
  let again = false;
  let stopped = false;

  const check = async (): Promise<void> => {
    if (reading) {
      again = true; // a read is in flight: check once more when it ends, never in parallel
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        await checkOnce();
      } while (again && !stopped);
    } finally {
      reading = false;
    }
  };

  const checkOnce = async (): Promise<void> => {
    let file: PeerFile;
    try {
      file = await loadPeerFile(full);
    } catch (err) {
      if (stopped) return;
      const error = err instanceof NodeError ? err : new NodeError("E_CONFIG_READ", String(err), { cause: err });
      if (error.message === lastErrorMessage) return;
      if (error.message !== suspectMessage) {
        // Editors truncate then write: only an error that survives one more quiet period is real.
        suspectMessage = error.message;
        schedule();
        return;
      }
      lastErrorMessage = error.message;
      handlers.onError(error);
      return;
    }
    if (stopped) return;
    lastErrorMessage = undefined;
    suspectMessage = undefined;
    const key = peerFileKey(file);
    if (key === lastGoodKey) return;
    lastGoodKey = key;
    handlers.onChange(file);
  };

  const schedule = (): void => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void check();
    }, debounceMs);
  };

  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(full), (_event, changed) => {
      // Some platforms omit the name; then any event in the directory may concern the file.
      if (changed === null || changed === undefined || String(changed) === name) schedule();
    });
  } catch (err) {
    throw new NodeError("E_CONFIG_READ", `cannot watch the directory of ${full}: ${String(err)}`, { cause: err });
  }
  watcher.on("error", (err) => {
    if (stopped) return;
    handlers.onError(new NodeError("E_CONFIG_READ", `watching ${full} failed: ${err.message}`, { cause: err }));
  });
  schedule();

  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    watcher.close();
  };
}
