// Interrupted and corrupted transfers: resumed from the bytes on disk, verified, never used half-written.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadRepo, type DownloadOptions } from "../../../src/download/download.ts";
import { openAppendWriter, type OpenWriter } from "../../../src/download/fetch-file.ts";
import { startFakeHub, type FakeHub } from "../../helpers/fake-hub.ts";
import { SINGLE_DIMS, singleFileRepo } from "../../helpers/hub-fixtures.ts";

const REPO = "test-org/tiny-single";
const WEIGHTS = "model.safetensors";
let hub: FakeHub;
let cacheDir: string;
const repoDir = () => join(cacheDir, "models--test-org--tiny-single");
const opts = (attempts = 3): DownloadOptions => ({
  hub: { endpoint: hub.url },
  hubCacheDir: cacheDir,
  offline: false,
  policy: { attempts, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5_000 },
});

beforeAll(async () => {
  hub = await startFakeHub([singleFileRepo(REPO, SINGLE_DIMS)]);
});
afterAll(async () => {
  await hub.stop();
});
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), "exo-resume-"));
  hub.cdnRequests.length = 0;
});
afterEach(async () => {
  hub.faults.dropAt = undefined;
  hub.faults.corrupt = undefined;
  await rm(cacheDir, { recursive: true, force: true });
});

async function sha256(path: string): Promise<string> {
  return new Bun.CryptoHasher("sha256").update(await Bun.file(path).arrayBuffer()).digest("hex");
}

describe("resuming and verifying", () => {
  test("a connection dropped 5 times at random points completes, and no byte already on disk is fetched again", async () => {
    const file = hub.file(REPO, WEIGHTS);
    const cuts = new Set<number>();
    while (cuts.size < 5) cuts.add(1 + Math.floor(Math.random() * (file.size - 1)));
    const sorted = [...cuts].sort((a, b) => a - b);
    hub.faults.dropAt = new Map([[WEIGHTS, [...sorted]]]);
    let written = 0;
    const countingWriter: OpenWriter = async (path) => {
      const inner = await openAppendWriter(path);
      return {
        write: (b) => ((written += path.endsWith(`${file.sha256}.incomplete`) ? b.length : 0), inner.write(b)),
        close: inner.close,
      };
    };

    const res = await downloadRepo({ modelId: "m", repo: REPO }, { ...opts(), openWriter: countingWriter });

    const starts = hub.cdnRequests.filter((r) => r.path === WEIGHTS).map((r) => r.rangeStart);
    expect(starts.length).toBe(6);
    // Each retry resumes at or before the cut: Bun's fetch can lose the bytes still in flight when a connection drops.
    for (let k = 1; k < 6; k++) {
      expect(starts[k]).toBeGreaterThanOrEqual(starts[k - 1] as number);
      expect(starts[k]).toBeLessThanOrEqual(sorted[k - 1] as number);
    }
    const lostInFlight = sorted.reduce((n, cut, k) => n + cut - (starts[k + 1] as number), 0);
    expect(hub.servedBytes(WEIGHTS)).toBe(file.size + lostInFlight);
    expect(written).toBe(file.size);
    expect(await sha256(join(res.dir, WEIGHTS))).toBe(file.sha256);
  });

  test("a file left half-done by an earlier process resumes from the bytes on disk", async () => {
    const file = hub.file(REPO, WEIGHTS);
    const half = Math.floor(file.size / 2);
    await mkdir(join(repoDir(), "blobs"), { recursive: true });
    // Bun.write of a BunFile slice copies the whole file here, so pass the bytes.
    await Bun.write(
      join(repoDir(), "blobs", `${file.sha256}.incomplete`),
      new Uint8Array(await Bun.file(file.diskPath).slice(0, half).arrayBuffer()),
    );

    const res = await downloadRepo({ modelId: "m", repo: REPO }, opts());

    expect(hub.cdnRequests.filter((r) => r.path === WEIGHTS).map((r) => r.rangeStart)).toEqual([half]);
    expect(hub.servedBytes(WEIGHTS)).toBe(file.size - half);
    expect(await sha256(join(res.dir, WEIGHTS))).toBe(file.sha256);
  });

  test("a corrupted byte is caught by verification and the file is fetched again", async () => {
    const file = hub.file(REPO, WEIGHTS);
    hub.faults.corrupt = new Map([[WEIGHTS, 1]]);

    const res = await downloadRepo({ modelId: "m", repo: REPO }, opts());

    expect(hub.servedBytes(WEIGHTS)).toBe(2 * file.size);
    expect(await sha256(join(res.dir, WEIGHTS))).toBe(file.sha256);
  });

  test("a file corrupted on every try fails with E_DOWNLOAD_VERIFY and is never put in place", async () => {
    hub.faults.corrupt = new Map([[WEIGHTS, 99]]);
    const file = hub.file(REPO, WEIGHTS);

    const err = await downloadRepo({ modelId: "m", repo: REPO }, opts(2)).catch((e: unknown) => e);

    expect(err).toMatchObject({ code: "E_DOWNLOAD_VERIFY" });
    expect((err as Error).message).toContain(WEIGHTS);
    const blobs = await readdir(join(repoDir(), "blobs"));
    expect(blobs).not.toContain(file.sha256);
    expect(await Bun.file(join(repoDir(), "snapshots", hub.commit(REPO), WEIGHTS)).exists()).toBe(false);
  });

  test("a lock left by a process that is gone is taken over", async () => {
    const file = hub.file(REPO, WEIGHTS);
    const gone = Bun.spawn(["true"]);
    await gone.exited;
    await mkdir(join(repoDir(), "blobs"), { recursive: true });
    const lock = join(repoDir(), "blobs", `${file.sha256}.exo-lock`);
    await Bun.write(lock, String(gone.pid));

    const res = await downloadRepo({ modelId: "m", repo: REPO }, opts());

    expect(await sha256(join(res.dir, WEIGHTS))).toBe(file.sha256);
    expect(await Bun.file(lock).exists()).toBe(false);
  });

  test("a blob another live process is fetching is waited for and not fetched again", async () => {
    const file = hub.file(REPO, WEIGHTS);
    const other = Bun.spawn(["sleep", "30"]);
    try {
      await mkdir(join(repoDir(), "blobs"), { recursive: true });
      await Bun.write(join(repoDir(), "blobs", `${file.sha256}.exo-lock`), String(other.pid));
      const download = downloadRepo({ modelId: "m", repo: REPO }, opts());
      // The other process finishes the blob, then exits (its lock stays behind, as after a crash).
      await Bun.write(
        join(repoDir(), "blobs", file.sha256),
        new Uint8Array(await Bun.file(file.diskPath).arrayBuffer()),
      );
      other.kill();
      await other.exited;
      const res = await download;
      expect(hub.cdnRequests.filter((r) => r.path === WEIGHTS)).toEqual([]);
      expect(await sha256(join(res.dir, WEIGHTS))).toBe(file.sha256);
    } finally {
      other.kill();
    }
  });
});
