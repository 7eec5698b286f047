// Waiters that an event wakes all at once, each also bounded by its own deadline: the one "wait until told, or
// at most N ms" behind the places that announce a condition (bytes arrived, a model went idle, membership moved).

export class WakeSet {
  private waiters = new Set<() => void>();

  /** Resolves at the next wakeAll() or after `ms`, whichever comes first. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  wakeAll(): void {
    const woken = [...this.waiters];
    this.waiters.clear();
    for (const w of woken) w();
  }
}
