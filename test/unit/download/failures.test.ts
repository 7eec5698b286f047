// Failures that must say what to do: gated/private (401/403), missing repo or file (404), a stalled
// server, a full disk. Nothing half-written is ever put in place.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadRepo, type DownloadOptions } from "../../../src/download/download.ts";
import { openAppendWriter, type OpenWriter } from "../../../src/download/fetch-file.ts";
import { startFakeHub, type FakeHub } from "../../helpers/fake-hub.ts";
import { SHARDED_DIMS, SHARDED_FILES, SINGLE_DIMS, shardedRepo, singleFileRepo } from "../../helpers/hub-fixtures.ts";

const REPO = "test-org/tiny-single";
const SHARDED = "test-org/tiny-sharded";
const WEIGHTS = "model.safetensors";
let hub: FakeHub;
let cacheDir: string;
const opts = (extra: Partial<DownloadOptions> = {}): DownloadOptions => ({
  hub: { endpoint: hub.url },
  hubCacheDir: cacheDir,
  offline: false,
  policy: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5_000 },
  ...extra,
});
type CodedError = Error & { code?: string };
const failure = (p: Promise<unknown>): Promise<CodedError> =>
  p.then(
    () => new Error("expected a failure"),
    (e: unknown) => e as CodedError,
  );

beforeAll(async () => {
  hub = await startFakeHub([singleFileRepo(REPO, SINGLE_DIMS), shardedRepo(SHARDED, SHARDED_DIMS, SHARDED_FILES)]);
});
afterAll(async () => {
  await hub.stop();
});
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), "exo-fail-"));
});
afterEach(async () => {
  for (const key of Object.keys(hub.faults)) delete hub.faults[key as keyof typeof hub.faults];
  await rm(cacheDir, { recursive: true, force: true });
});

describe("clear failures", () => {
  test("401 on a gated repo says to accept the licence on the model page and set HF_TOKEN", async () => {
    hub.faults.deny = { repo: REPO, status: 401 };
    const err = await failure(downloadRepo({ modelId: "m", repo: REPO }, opts()));
    expect(err.code).toBe("E_DOWNLOAD_AUTH");
    expect(err.message).toContain(`${hub.url}/${REPO}`);
    expect(err.message).toContain("Accept the model's licence");
    expect(err.message).toContain("HF_TOKEN");
  });

  test("403 says the token's account has not been granted access", async () => {
    hub.faults.deny = { repo: REPO, status: 403 };
    const err = await failure(
      downloadRepo({ modelId: "m", repo: REPO }, opts({ hub: { endpoint: hub.url, token: "hf_x" } })),
    );
    expect(err.code).toBe("E_DOWNLOAD_AUTH");
    expect(err.message).toContain("(403)");
    expect(err.message).toContain("not been granted access");
  });

  test("the token is sent to the hub as a bearer token", async () => {
    hub.faults.requireToken = "hf_secret";
    const denied = await failure(downloadRepo({ modelId: "m", repo: REPO }, opts()));
    expect(denied.code).toBe("E_DOWNLOAD_AUTH");
    const res = await downloadRepo(
      { modelId: "m", repo: REPO },
      opts({ hub: { endpoint: hub.url, token: "hf_secret" } }),
    );
    expect(res.files).toContain(WEIGHTS);
  });

  test("404 on a repo names the repo", async () => {
    const err = await failure(downloadRepo({ modelId: "m", repo: "test-org/no-such-model" }, opts()));
    expect(err.code).toBe("E_DOWNLOAD_NOT_FOUND");
    expect(err.message).toContain("repo test-org/no-such-model not found");
  });

  test("404 on a file names the file and the repo", async () => {
    const missing = "model-00002-of-00004.safetensors";
    hub.faults.hide = new Set([missing]);
    const err = await failure(
      downloadRepo({ modelId: "m", repo: SHARDED, range: { layerStart: 1, layerEnd: 3 } }, opts()),
    );
    expect(err.code).toBe("E_DOWNLOAD_NOT_FOUND");
    expect(err.message).toContain(`file ${missing} not found in ${SHARDED}`);
  });

  test("503s are retried with backoff and the file completes; too many in a row give up naming the status", async () => {
    hub.faults.unavailable = new Map([[WEIGHTS, 2]]);
    const res = await downloadRepo(
      { modelId: "m", repo: REPO },
      opts({ policy: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5_000 } }),
    );
    expect(await Bun.file(join(res.dir, WEIGHTS)).exists()).toBe(true);
    hub.faults.unavailable = new Map([[WEIGHTS, 5]]);
    const err = await failure(
      downloadRepo({ modelId: "m", repo: REPO }, { ...opts(), hubCacheDir: join(cacheDir, "again") }),
    );
    expect(err.code).toBe("E_DOWNLOAD");
    expect(err.message).toContain(`gave up on ${REPO}/${WEIGHTS} after 2 failed tries`);
    expect(err.message).toContain("answered 503");
  });

  test("a server that stops sending is abandoned after the stall timeout and the error says it stalled", async () => {
    hub.faults.stallAt = new Map([[WEIGHTS, 1000]]);
    const err = await failure(
      downloadRepo(
        { modelId: "m", repo: REPO },
        opts({ policy: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 150 } }),
      ),
    );
    expect(err.code).toBe("E_DOWNLOAD");
    expect(err.message).toContain(`gave up on ${REPO}/${WEIGHTS}`);
    expect(err.message).toContain("stalled");
    expect(
      await Bun.file(join(cacheDir, "models--test-org--tiny-single", "snapshots", hub.commit(REPO), WEIGHTS)).exists(),
    ).toBe(false);
  });

  test("too little free space is refused up front, saying how much is needed", async () => {
    const err = await failure(downloadRepo({ modelId: "m", repo: REPO }, opts({ freeBytes: async () => 1024 })));
    expect(err.code).toBe("E_DOWNLOAD_DISK_FULL");
    expect(err.message).toMatch(/3\.\d MiB needed for 1 file\(s\), only 1\.0 KiB free/);
  });

  test("a disk that fills up mid-file fails with E_DOWNLOAD_DISK_FULL, keeps the bytes, and a later pull resumes", async () => {
    const { size, sha256 } = hub.file(REPO, WEIGHTS);
    let budget = 1 << 20;
    const fillingDisk: OpenWriter = async (path) => {
      const inner = await openAppendWriter(path);
      return {
        async write(bytes) {
          // Like a real disk: what fits is written, then the write fails.
          if (!path.endsWith(`${sha256}.incomplete`)) return inner.write(bytes);
          const fits = Math.min(budget, bytes.length);
          await inner.write(bytes.subarray(0, fits));
          budget -= fits;
          if (fits < bytes.length)
            throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        },
        close: inner.close,
      };
    };
    const err = await failure(downloadRepo({ modelId: "m", repo: REPO }, opts({ openWriter: fillingDisk })));
    expect(err.code).toBe("E_DOWNLOAD_DISK_FULL");
    expect(err.message).toContain(`${size} bytes needed`);
    const blobs = await readdir(join(cacheDir, "models--test-org--tiny-single", "blobs"));
    expect(blobs).not.toContain(hub.file(REPO, WEIGHTS).sha256);

    hub.cdnRequests.length = 0;
    const res = await downloadRepo({ modelId: "m", repo: REPO }, opts());
    expect(hub.cdnRequests.find((r) => r.path === WEIGHTS)?.rangeStart).toBe(1 << 20);
    expect(
      new Bun.CryptoHasher("sha256").update(await Bun.file(join(res.dir, WEIGHTS)).arrayBuffer()).digest("hex"),
    ).toBe(hub.file(REPO, WEIGHTS).sha256);
  });
});
