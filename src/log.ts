// The project's logger: one consola instance, one tagged child per module (tag = folder name).
import { createConsola, type ConsolaInstance } from "consola";

const levelFromEnv = Number(process.env.EXO_LOG_LEVEL ?? process.env.CONSOLA_LEVEL);

/** Logs go to stderr so stdout stays free for machine-readable lines (the `ready` event). */
export const rootLogger: ConsolaInstance = createConsola({
  level: Number.isFinite(levelFromEnv) ? levelFromEnv : 3,
  stdout: process.stderr,
  stderr: process.stderr,
});

/** A child logger whose lines carry `tag` (e.g. "net", "engine"). */
export function logger(tag: string): ConsolaInstance {
  return rootLogger.withTag(tag);
}
