// Hugging Face settings from the environment (HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE),
// read the way huggingface_hub reads them so the cache is shared with other HF tools.
import { homedir } from "node:os";
import { join } from "node:path";

export interface HfEnv {
  /** Hub base URL, without a trailing slash. */
  endpoint: string;
  /** HF_TOKEN, else the token file under HF_HOME; undefined for anonymous access. */
  token?: string;
  /** The hub cache: models--org--name/{blobs,snapshots,refs} live here. */
  hubCacheDir: string;
  /** HF_HUB_OFFLINE=1: never call the hub, use what is cached. */
  offline: boolean;
}

type Env = Record<string, string | undefined>;

/** Pure: the settings an environment describes, plus the token file's path to read when HF_TOKEN is unset. */
export function parseHfEnv(env: Env, home: string = homedir()): HfEnv & { tokenFile: string } {
  const hfHome = env.HF_HOME || join(env.XDG_CACHE_HOME || join(home, ".cache"), "huggingface");
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
  return {
    endpoint: (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, ""),
    ...(token ? { token } : {}),
    hubCacheDir: env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome, "hub"),
    offline: isTruthy(env.HF_HUB_OFFLINE),
    tokenFile: env.HF_TOKEN_PATH || join(hfHome, "token"),
  };
}

/** The process's Hugging Face settings, with the token file read when HF_TOKEN is unset. */
export async function loadHfEnv(env: Env = process.env): Promise<HfEnv> {
  const { tokenFile, ...parsed } = parseHfEnv(env);
  if (parsed.token) return parsed;
  const file = Bun.file(tokenFile);
  const token = (await file.exists()) ? (await file.text()).trim() : "";
  return token ? { ...parsed, token } : parsed;
}

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && ["1", "true", "yes", "on"].includes(value.toLowerCase());
}
