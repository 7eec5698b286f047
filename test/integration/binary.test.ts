// The compiled `exo`, copied alone into an empty folder (beside a bunfig.toml and a .env that must be ignored),
// runs a 3-node cluster that answers the openai client from the embedded model and passes `exo doctor`; the
// darwin-arm64 cross-build is a Mach-O arm64 executable; a build without MLX still runs a node and says why not.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import OpenAI from "openai";
import { buildExecutable, type BuildResult } from "../../build.ts";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

const REPO = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "exo-binary-"));
const app = join(work, "app");
const exo = join(app, "exo");
const bare = join(work, "no-mlx");
let darwin: BuildResult;
let bareBuild: BuildResult;

useNodes();
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(async () => {
  mkdirSync(app);
  // Built from a throwaway copy of the project that is gone before anything runs: a build-time path
  // baked into the executable (node-mlx's addon path was one) then leads nowhere.
  const project = copyProject(join(work, "project"));
  try {
    if (process.env.NODE_BIN) {
      copyFileSync(process.env.NODE_BIN, exo);
      chmodSync(exo, 0o755);
    } else {
      expect((await buildExecutable({ target: "host", outfile: exo, root: project })).mlxEmbedded).toBe(true);
    }
    darwin = await buildExecutable({
      target: "bun-darwin-arm64",
      outfile: join(work, "exo-darwin-arm64"),
      root: project,
    });
    bareBuild = await buildExecutable({ target: "host", outfile: join(bare, "exo"), root: project, embedMlx: false });
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
  for (const dir of [app, bare]) writeDecoys(dir);
}, 180_000);

describe("the compiled executable", () => {
  test("sits alone in its folder and prints its version there", () => {
    expect(readdirSync(app).sort()).toEqual([".env", "bunfig.toml", "crash.ts", "exo"]);
    const run = Bun.spawnSync([exo, "--version"], { cwd: app });
    expect(run.stderr.toString()).toBe("");
    expect(run.stdout.toString().trim()).toBe(JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version);
  });

  test("the decoys there are live: plain Bun in that folder loads both", () => {
    const crashed = Bun.spawnSync([process.execPath, "-e", "console.log('ran')"], { cwd: app, stderr: "pipe" });
    expect(crashed.exitCode).not.toBe(0);
    expect(crashed.stderr.toString()).toContain("the decoy bunfig.toml was loaded");
    const dotenv = Bun.spawnSync(
      [process.execPath, "--config=/dev/null", "-e", "console.log(process.env.EXO_API_KEY)"],
      { cwd: app },
    );
    expect(dotenv.stdout.toString().trim()).toBe("decoy-key-from-dotenv");
  });

  test(
    "three nodes started from it answer a chat completion from the embedded model and pass exo doctor",
    withNodeLogs(async () => {
      const peers = join(work, "peers.yaml");
      writeFileSync(peers, "peers: {}\n");
      const nodes: SpawnedNode[] = [];
      for (const id of ["n1", "n2", "n3"]) {
        const args = ["--config", peers, "--node-id", id, "--host", "127.0.0.1", "--port", "0", "--api-port", "0"];
        nodes.push(await spawnNode({ bin: exo, cwd: app, args, env: { EXO_HOME: join(work, `home-${id}`) } }));
      }
      // The peer file is watched: once every port is known, list them all and the nodes link up.
      writeFileSync(
        peers,
        `peers:\n${nodes.map((n) => `  ${n.nodeId}: { address: 127.0.0.1, port: ${n.port} }`).join("\n")}\n`,
      );
      for (const n of nodes) {
        await waitFor(async () => Object.keys((await getJson(n, "/topology")).nodes).length === 3, {
          timeoutMs: 15_000,
          what: `${n.nodeId} to see 3 nodes`,
        });
      }

      // The .env beside the executable sets EXO_API_KEY; had it been read, this key would be refused (401).
      const client = new OpenAI({
        baseURL: `http://127.0.0.1:${nodes[0]!.apiPort}/v1`,
        apiKey: "not-the-decoy-key",
        maxRetries: 0,
        timeout: 120_000,
      });
      const reply = await client.chat.completions.create({
        model: "exo-tiny-chat",
        messages: [{ role: "user", content: "count from 3 to 9" }],
        temperature: 0,
        max_tokens: 32,
      });
      expect(reply.choices[0]?.message.content?.trim()).toBe([3, 4, 5, 6, 7, 8, 9].join(" "));
      expect(reply.choices[0]?.finish_reason).toBe("stop");

      // Every node ran a share of the layers on MLX loaded from its own extracted copy of the addon.
      for (const n of nodes) {
        expect(n.logs()).toMatch(/loaded exo-tiny-chat layers \[\d+, ?\d+\) of 4/);
        const runtime = join(work, `home-${n.nodeId}`, "runtime");
        const [folder] = readdirSync(runtime);
        expect(readdirSync(join(runtime, folder!)).sort()).toEqual(["default-model", "mlx.node"]);
      }

      const doctor = Bun.spawn([exo, "doctor", "--config", peers], {
        cwd: app,
        env: { ...process.env, EXO_HOME: join(work, "home-doctor") },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [report, code] = await Promise.all([new Response(doctor.stdout).text(), doctor.exited]);
      expect({ code, report }).toMatchObject({
        code: 0,
        report: expect.stringMatching(/result: all \d+ checks passed/),
      });
      for (const id of ["n1", "n2", "n3"]) expect(report).toContain(id);
    }),
    120_000,
  );
});

describe("exo run from the executable", () => {
  test("answers --prompt with the embedded model on a lone node and exits 0", async () => {
    const proc = Bun.spawn(
      [
        exo,
        "run",
        "--prompt",
        "reverse abcd",
        "--node-id",
        "solo",
        "--port",
        "0",
        "--api-port",
        "0",
        "--peer-wait-ms",
        "0",
      ],
      {
        cwd: app,
        env: { ...process.env, EXO_HOME: join(work, "home-run") },
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect({ code, err }).toMatchObject({ code: 0 });
    expect(out.trim().split("\n").at(-1)).toBe([..."abcd"].reverse().join(""));
  }, 60_000);
});

describe("the darwin-arm64 build", () => {
  test("is a 64-bit Mach-O executable for arm64", () => {
    const head = new DataView(readFileSync(darwin.outfile).buffer);
    expect(head.getUint32(0, true)).toBe(0xfeedfacf); // MH_MAGIC_64
    expect(head.getUint32(4, true)).toBe(0x0100000c); // CPU_TYPE_ARM64
    expect(head.getUint32(12, true)).toBe(2); // MH_EXECUTE
    expect(darwin.platform).toBe("darwin-arm64");
  });

  test("carries no MLX addon when built here (the npm package has only the Linux one)", () => {
    expect(darwin.mlxEmbedded).toBe(false);
  });
});

describe("an executable without an MLX addon (what a darwin build made on Linux is on a Mac)", () => {
  test(
    "runs a node and answers a model request with a clear reason instead of crashing",
    withNodeLogs(async () => {
      expect(bareBuild.mlxEmbedded).toBe(false);
      const node = await spawnNode({
        bin: bareBuild.outfile,
        cwd: bare,
        args: ["--node-id", "solo", "--port", "0", "--api-port", "0"],
        env: { EXO_HOME: join(work, "home-bare") },
      });
      await waitFor(() => node.logs().includes("carries no MLX addon"), {
        what: "the start-up warning about the missing addon",
      });
      const res = await fetch(`http://127.0.0.1:${node.apiPort}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "exo-tiny-chat", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
      });
      const body = (await res.json()) as { error?: { message?: string } };
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(body.error?.message).toContain("carries no MLX addon");
      expect((await fetch(`http://127.0.0.1:${node.apiPort}/healthcheck`)).status).toBe(200);
      expect(node.exitCode()).toBeNull();
      const models = Bun.spawnSync([bareBuild.outfile, "models"], {
        cwd: bare,
        env: { ...process.env, EXO_HOME: join(work, "home-bare") },
      });
      expect(models.exitCode).toBe(0);
      expect(models.stdout.toString()).toContain("exo-tiny-chat");
    }),
    60_000,
  );
});

// --- helpers ---

/** The project's sources and dependencies (hard links, so it is quick) in a folder of its own. */
function copyProject(to: string): string {
  mkdirSync(to);
  for (const entry of ["src", "configs", "package.json", "tsconfig.json", "build.ts"]) {
    const r = Bun.spawnSync(["cp", "-r", join(REPO, entry), to]);
    if (r.exitCode !== 0) throw new Error(`copying ${entry}: ${r.stderr}`);
  }
  const r = Bun.spawnSync(["cp", "-al", join(REPO, "node_modules"), to]);
  if (r.exitCode !== 0) Bun.spawnSync(["cp", "-r", join(REPO, "node_modules"), to]);
  return to;
}

/** A bunfig.toml whose preload would crash the process and a .env whose API key would refuse our requests. */
function writeDecoys(dir: string): void {
  writeFileSync(join(dir, "crash.ts"), 'throw new Error("the decoy bunfig.toml was loaded");\n');
  writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./crash.ts"]\n');
  writeFileSync(join(dir, ".env"), "EXO_API_KEY=decoy-key-from-dotenv\n");
}

async function getJson(node: SpawnedNode, path: string): Promise<{ nodes: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${node.apiPort}${path}`);
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return (await res.json()) as { nodes: Record<string, unknown> };
}
