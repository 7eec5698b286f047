// The project's logger: one consola instance, one tagged child per module (tag = folder name).
import { createConsola, type ConsolaInstance } from "consola";

const levelFromEnv = Number(process.env.EXO_LOG_LEVEL ?? process.env.CONSOLA_LEVEL);

/** Logs go to stderr so stdout stays free for machine-readable lines (the `ready` event). */
export const rootLogger: ConsolaInstance = createConsola({
  level: Number.isFinite(levelFromEnv) ? levelFromEnv : 3,
  stdout: process.stderr,
  stderr: process.stderr,
});

// consola's withTag copies the level at creation, so children are kept to follow later changes.
const children = new Set<ConsolaInstance>();

/** A child logger whose lines carry `tag` (e.g. "net", "engine"). */
export function logger(tag: string): ConsolaInstance {
  const child = rootLogger.withTag(tag);
  children.add(child);
  return child;
}

/** Change the level of the root logger and of every tagged child made so far or later. */
export function setLogLevel(level: number): void {
  rootLogger.level = level;
  for (const child of children) child.level = level;
}
