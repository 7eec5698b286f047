// The low-priority lane of a link: frames of bulk data (model file bytes) wait here and go into the connection
// only while nothing else is queued on it, so an activation or token written meanwhile waits behind at most the
// one bulk frame already handed over, never behind a file. Bytes held here are bounded by the requester's window
// of reads (download/peer-files.ts), not by this lane.
import { isNodeError } from "../errors.ts";
import type { OutgoingMessage } from "../protocol/frame.ts";

/** What the lane needs of a Connection. */
export interface BulkSink {
  readonly closed: boolean;
  /** Bytes written but not yet taken by the kernel. */
  readonly queuedBytes: number;
  write(msg: OutgoingMessage): void;
  /** Resolves once everything written so far went to the kernel (or the connection closed). */
  flushed(): Promise<void>;
}

export class BulkLane {
  private frames: OutgoingMessage[] = [];
  private waiting = false;
  /** Bulk frames handed to the connection so far. */
  sent = 0;

  constructor(private readonly sink: BulkSink) {}

  /** Frames waiting for the connection to be idle. */
  get pending(): number {
    return this.frames.length;
  }

  push(msg: OutgoingMessage): void {
    this.frames.push(msg);
    this.pump();
  }

  private pump(): void {
    while (this.frames.length > 0) {
      if (this.sink.closed) {
        this.frames = [];
        return;
      }
      if (this.sink.queuedBytes > 0) {
        // Something (another bulk frame or inference traffic) is still going out: wait until it has.
        if (!this.waiting) {
          this.waiting = true;
          void this.sink.flushed().then(() => {
            this.waiting = false;
            this.pump();
          });
        }
        return;
      }
      const msg = this.frames.shift() as OutgoingMessage;
      try {
        this.sink.write(msg);
        this.sent++;
      } catch (err) {
        // The answer could not be framed (too large): the requester gets an ERROR, not a timeout.
        if (this.sink.closed) continue;
        const code = isNodeError(err) ? err.code : "E_INTERNAL";
        const message = err instanceof Error ? err.message : String(err);
        this.sink.write({ type: "ERROR", fields: { code, message, id: msg.fields?.id } });
      }
    }
  }
}
