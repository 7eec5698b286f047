// EXO_HOME: the folder where a node keeps its state and the executable's extracted runtime files.
import { homedir } from "node:os";
import { join } from "node:path";

/** $EXO_HOME, else ~/.cache/exo as in exo (XDG_CACHE_HOME respected). */
export function exoHome(env: Record<string, string | undefined> = process.env, home: string = homedir()): string {
  return env.EXO_HOME || join(env.XDG_CACHE_HOME || join(home, ".cache"), "exo");
}
