// The README's main-job command, taken from the README itself and run as written: a 3-node cluster on
// loopback answers one chat request from the embedded model, prints the answer, and leaves nothing running.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const REPO = resolve(import.meta.dir, "../..");
const README = readFileSync(resolve(REPO, "README.md"), "utf8");

/** The first fenced `sh` block under the heading that starts with `title`. */
function commandUnder(title: string): string {
  const section = README.split(/^## /m).find((s) => s.startsWith(title));
  const block = section && /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error(`README has no sh block under "## ${title}"`);
  return block.trim();
}

test("the README names one command for the main job and one for the tests", () => {
  expect(commandUnder("Try it")).toBe("bash scripts/demo.sh");
  expect(commandUnder("Run the tests")).toBe("bash .ci/run");
  expect(readFileSync(resolve(REPO, ".ci/run"), "utf8")).toContain("bash scripts/setup.sh");
});

test("the main-job command starts a 3-node cluster, prints the model's answer and stops every node", async () => {
  const command = commandUnder("Try it");
  const proc = Bun.spawn(["bash", "-c", command], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  expect({ code, out, err }).toMatchObject({ code: 0 });
  expect(out).toContain("cluster up: n1, n2, n3");
  // The demo asks "count from 3 to 9"; the answer is the task's rule applied, not a string copied from a run.
  expect(out).toContain(`answer: ${[3, 4, 5, 6, 7, 8, 9].join(" ")}`);
  // Its nodes are gone: their API ports are free again.
  for (const port of [52415, 52416, 52417]) {
    const refused = await fetch(`http://127.0.0.1:${port}/healthcheck`).then(
      () => false,
      () => true,
    );
    expect(refused).toBe(true);
  }
}, 180_000);
