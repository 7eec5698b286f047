// The web dashboard in a real browser (Debian's chromium driven by playwright-core) against a 2-node cluster
// on the embedded model with EXO_API_KEY set: it asks for the key, names both nodes, shows a chat answer as
// it streams, and the model's layer split over the nodes. Writes a screenshot (its path is printed).
// biome-ignore-all lint/performance/useDomNodeTextContent: playwright's innerText is the rendered text a person sees, which is what this test asserts
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { startCluster, type TestCluster } from "../helpers/cluster-nodes.ts";
import { useNodes, withNodeLogs } from "../helpers/spawn-node.ts";

useNodes();

const KEY = "dashboard-key";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOT_DIR = join(tmpdir(), "exo-dashboard-test");
let cluster: TestCluster;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium`);
  cluster = await startCluster(
    [
      { id: "studio", memoryMb: 6000 },
      { id: "mini", memoryMb: 2000 },
    ],
    ["--health-interval-ms", "500"],
    { apiKey: KEY },
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--headless=new"] });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
});

describe("the dashboard at GET /", () => {
  test(
    "asks for the key, names both nodes, streams a chat answer and shows the model's layers on each node",
    withNodeLogs(async () => {
      const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${cluster.node("studio").apiPort}/`);

      // EXO_API_KEY is set: the page says so and asks for it.
      const keyForm = page.locator("#keyform");
      await keyForm.waitFor({ state: "visible", timeout: 10_000 });
      expect(await keyForm.innerText()).toContain("API key");
      await page.fill("#key", KEY);
      await page.click("#keyform button");

      // Both nodes, named, up, with their chips and memory.
      for (const id of ["studio", "mini"]) {
        const row = page.locator(`.node[data-node="${id}"]`);
        await row.waitFor({ timeout: 15_000 });
        await expect(row.innerText()).resolves.toMatch(new RegExp(`${id}[\\s\\S]*GB[\\s\\S]*up`));
      }

      // A chat message: the answer appears as it streams in.
      await page.locator("#model option[value='exo-tiny-chat']").waitFor({ state: "attached", timeout: 10_000 });
      await page.fill("#prompt", "count from 3 to 9");
      await page.click("#send");
      const answer = page.locator(".msg.assistant span.done");
      await answer.waitFor({ timeout: 120_000 });
      expect(await answer.innerText()).toBe("3 4 5 6 7 8 9");

      // The model is now placed: the page shows each node's layers as the API reports them.
      const api = (await (
        await fetch(`http://127.0.0.1:${cluster.node("studio").apiPort}/v1/placements`, {
          headers: { authorization: `Bearer ${KEY}` },
        })
      ).json()) as {
        placements: { model: string; stages: { node_id: string; layer_start: number; layer_end: number }[] }[];
      };
      const placed = api.placements.find((p) => p.model === "exo-tiny-chat")!;
      expect(placed.stages.map((s) => s.node_id).sort()).toEqual(["mini", "studio"]);
      const model = page.locator('.placement[data-model="exo-tiny-chat"]');
      await model.waitFor({ timeout: 10_000 });
      for (const s of placed.stages) {
        const stage = model.locator(`.stage[data-node="${s.node_id}"]`);
        await expect(stage.innerText()).resolves.toContain(`${s.node_id}: layers ${s.layer_start}–${s.layer_end - 1}`);
        await stage.filter({ hasText: "ready" }).waitFor({ timeout: 10_000 });
      }
      expect(await model.locator(".split div").allInnerTexts()).toEqual(placed.stages.map((s) => s.node_id));
      // The model's state (issue 17): ready once every stage is loaded and up.
      await model.locator('.model-state[data-state="ready"]').waitFor({ timeout: 10_000 });

      mkdirSync(SHOT_DIR, { recursive: true });
      const shot = join(SHOT_DIR, "dashboard.png");
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`dashboard screenshot: ${shot}`);
      expect(errors).toEqual([]);
      await page.close();
    }),
    180_000,
  );

  test("the page is served without the key and loads nothing from elsewhere", async () => {
    const res = await fetch(`http://127.0.0.1:${cluster.node("mini").apiPort}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
    // Everything else still needs it.
    expect((await fetch(`http://127.0.0.1:${cluster.node("mini").apiPort}/v1/placements`)).status).toBe(401);
  });
});
