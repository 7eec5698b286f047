// Reading a model directory's config.json: the one place in the code that knows the file's name and
// parses it (test/unit/architecture.test.ts holds every other module to that). No MLX.
import { join } from "node:path";
import { NodeError } from "../../errors.ts";
import type { Json } from "./model-args.ts";

/** The Hugging Face model config every checkpoint directory and hub repo carries. */
export const CONFIG_FILE = "config.json";

/** The parsed config.json of `dir`. @throws E_WEIGHTS naming the path when it is missing or not a JSON object. */
export async function readConfigFile(dir: string): Promise<Json> {
  const path = join(dir, CONFIG_FILE);
  let parsed: unknown;
  try {
    parsed = await Bun.file(path).json();
  } catch (cause) {
    throw new NodeError("E_WEIGHTS", `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new NodeError("E_WEIGHTS", `${path} is not a JSON object`);
  return parsed as Json;
}

/** Like readConfigFile, but undefined when the directory has no readable config.json. */
export async function readConfigFileIfAny(dir: string): Promise<Json | undefined> {
  return readConfigFile(dir).catch(() => undefined);
}

/** True when `dir` holds a config.json. */
export function hasConfigFile(dir: string): Promise<boolean> {
  return Bun.file(join(dir, CONFIG_FILE)).exists();
}
