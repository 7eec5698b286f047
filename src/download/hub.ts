// The Hugging Face hub as the downloader sees it: which commit "main" is, which files a commit has
// (with their hashes), and hub failures turned into NodeErrors that say what to do.
import { HubApiError, listFiles, modelInfo } from "@huggingface/hub";
import { NodeError } from "../errors.ts";
import { TransientError } from "./retry.ts";

export interface HubOptions {
  /** Base URL, e.g. https://huggingface.co (HF_ENDPOINT). */
  endpoint: string;
  token?: string;
  /** Injected in tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** A file of one commit. `etag` is the sha256 for LFS files and the git blob sha1 otherwise (what HF sends as ETag). */
export interface RepoFile {
  path: string;
  size: number;
  etag: string;
}

/**
 * The commit a revision (branch, tag or hash) points to.
 * @throws NodeError E_DOWNLOAD_AUTH (401/403), E_DOWNLOAD_NOT_FOUND (404), E_DOWNLOAD_OFFLINE (unreachable), TransientError.
 */
export async function fetchCommit(hub: HubOptions, repo: string, revision: string): Promise<string> {
  try {
    const info = await modelInfo({
      name: repo,
      revision,
      hubUrl: hub.endpoint,
      fetch: authFetch(hub),
      additionalFields: ["sha"],
    });
    const sha = (info as { sha?: unknown }).sha;
    if (typeof sha !== "string" || !/^[0-9a-f]{40}$/.test(sha))
      throw new NodeError("E_DOWNLOAD", `${hub.endpoint} gave no commit for ${repo}@${revision}`);
    return sha;
  } catch (err) {
    throw hubError(err, hub, repo);
  }
}

/** Every file of a commit with its size and hash. Throws like fetchCommit. */
export async function listCommitFiles(hub: HubOptions, repo: string, commit: string): Promise<RepoFile[]> {
  const files: RepoFile[] = [];
  try {
    for await (const entry of listFiles({
      repo,
      revision: commit,
      recursive: true,
      hubUrl: hub.endpoint,
      fetch: authFetch(hub),
    })) {
      if (entry.type !== "file") continue;
      const etag = entry.lfs?.oid ?? entry.oid;
      if (!etag) throw new NodeError("E_DOWNLOAD", `${hub.endpoint} listed ${repo}/${entry.path} without a hash`);
      files.push({ path: entry.path, size: entry.lfs?.size ?? entry.size, etag });
    }
  } catch (err) {
    throw hubError(err, hub, repo);
  }
  return files;
}

/** The download URL of a file at a commit. */
export function resolveUrl(hub: HubOptions, repo: string, commit: string, path: string): string {
  return `${hub.endpoint}/${repo}/resolve/${commit}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** fetch with the token added for requests to the hub itself (never to another origin, e.g. a CDN). */
export function authFetch(hub: HubOptions): typeof fetch {
  const base = hub.fetch ?? fetch;
  if (!hub.token) return base;
  const origin = new URL(hub.endpoint).origin;
  const wrapped = (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.origin !== origin) return base(input, init);
    const headers = new Headers(init?.headers);
    headers.set("Authorization", `Bearer ${hub.token}`);
    return base(input, { ...init, headers });
  };
  return Object.assign(wrapped, base);
}

/** A NodeError for an HTTP status from the hub about `repo` (and `path` when it is about one file). */
export function statusError(status: number, hub: HubOptions, repo: string, path?: string): NodeError {
  const page = `${hub.endpoint}/${repo}`;
  if (status === 401 || status === 403) {
    const why =
      status === 401
        ? hub.token
          ? "the token in HF_TOKEN was not accepted for it"
          : "it is gated or private and no token is set"
        : "this token's account has not been granted access";
    return new NodeError(
      "E_DOWNLOAD_AUTH",
      `Hugging Face refused ${repo} (${status}): ${why}. Accept the model's licence on ${page} and set HF_TOKEN to a token of that account.`,
    );
  }
  if (status === 404) {
    return new NodeError(
      "E_DOWNLOAD_NOT_FOUND",
      path
        ? `file ${path} not found in ${repo} on ${hub.endpoint}`
        : `repo ${repo} not found on ${hub.endpoint} (check the name, or it may be private: set HF_TOKEN)`,
    );
  }
  const what = path ? `${repo}/${path}` : repo;
  if (status === 429 || status >= 500) return new TransientError(`${hub.endpoint} answered ${status} for ${what}`);
  return new NodeError("E_DOWNLOAD", `${hub.endpoint} answered ${status} for ${what}`);
}

/** True when an error means the hub could not be reached at all. */
export function isUnreachable(err: unknown): boolean {
  return err instanceof NodeError && err.code === "E_DOWNLOAD_OFFLINE";
}

// --- internal ---

function hubError(err: unknown, hub: HubOptions, repo: string): NodeError {
  if (err instanceof NodeError) return err;
  if (err instanceof HubApiError) return statusError(err.statusCode, hub, repo);
  return new NodeError(
    "E_DOWNLOAD_OFFLINE",
    `cannot reach ${hub.endpoint} for ${repo}: ${(err as Error).message ?? String(err)}`,
    { cause: err },
  );
}
