// `exo keygen` as a user runs it: one fresh key per run, 256 bits of base64url, accepted as a cluster key.
import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { parseClusterKey } from "../../src/config/cluster-key.ts";

const REPO = resolve(import.meta.dir, "../..");

async function keygen(): Promise<{ out: string; code: number }> {
  const p = Bun.spawn([process.execPath, "src/main.ts", "keygen"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  return { out, code };
}

test("exo keygen prints a fresh 256-bit key on one line, different every run, that a node accepts", async () => {
  const [a, b] = await Promise.all([keygen(), keygen()]);
  for (const r of [a, b]) {
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(Buffer.from(r.out.trim(), "base64url").length).toBe(32);
    expect(parseClusterKey(r.out, "keygen").bytes.length).toBe(43);
  }
  expect(a.out).not.toBe(b.out);
});
