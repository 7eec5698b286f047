// Lets MLX memory go: Bun runs the N-API finalizers that free MLX buffers only when the event loop turns
// (mlx-notes §4), so long loops call this every few steps.

/** Collects garbage and yields one macrotask so finalizers run. */
export async function releaseMemory(): Promise<void> {
  Bun.gc(true);
  await new Promise<void>((resolve) => setImmediate(resolve));
}
