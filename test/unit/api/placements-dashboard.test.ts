// GET /v1/placements, DELETE /v1/placements/{model} and the dashboard page, in-process over fakes.
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { Placement } from "../../../src/cluster/types.ts";
import { fakeDeps } from "../../helpers/fake-inference.ts";

const PLACED: Placement = {
  modelId: "tiny-chat",
  nLayers: 4,
  state: "ready",
  requestsInFlight: 2,
  stages: [
    { nodeId: "a", layerStart: 0, layerEnd: 3, memoryMb: 6000, phase: "ready", fraction: 1 },
    { nodeId: "b", layerStart: 3, layerEnd: 4, phase: "download", fraction: 0.5 },
  ],
};

function setup(apiKey?: string) {
  const unloaded: string[] = [];
  const fake = fakeDeps(undefined, {
    ...(apiKey ? { apiKey } : {}),
    cluster: {
      placements: () => [PLACED],
      unload: async (m) => {
        unloaded.push(m);
        return { modelId: m, nodes: m === "tiny-chat" ? ["a", "b"] : [] };
      },
    },
  });
  return { app: createApp(fake.deps), unloaded };
}

const req = (path: string, method = "GET", headers: Record<string, string> = {}) =>
  new Request(`http://exo.test${path}`, { method, headers });

describe("placements", () => {
  test("GET /v1/placements: each model, every stage's half-open layers, memory and state", async () => {
    const { app } = setup();
    expect(await (await app(req("/v1/placements"))).json()).toEqual({
      placements: [
        {
          model: "tiny-chat",
          n_layers: 4,
          state: "ready",
          reason: null,
          requests_in_flight: 2,
          stages: [
            { node_id: "a", layer_start: 0, layer_end: 3, memory_mb: 6000, phase: "ready", fraction: 1 },
            { node_id: "b", layer_start: 3, layer_end: 4, memory_mb: null, phase: "download", fraction: 0.5 },
          ],
        },
      ],
    });
  });

  test("GET /v1/cluster: the node's id and each model's state, the same shape as a placement", async () => {
    const { app } = setup();
    const body = (await (await app(req("/v1/cluster"))).json()) as { node_id: string; models: { state: string }[] };
    const placed = (await (await app(req("/v1/placements"))).json()) as { placements: unknown[] };
    expect(body.models).toEqual(placed.placements as { state: string }[]);
    expect(body.models[0]!.state).toBe("ready");
    expect(typeof body.node_id).toBe("string");
  });

  test("DELETE /v1/placements/{model} unloads it (ids percent-encoded); 404 when no node held it", async () => {
    const { app, unloaded } = setup();
    const res = await app(req("/v1/placements/tiny-chat", "DELETE"));
    expect(await res.json()).toEqual({ model: "tiny-chat", unloaded_from: ["a", "b"] });
    const none = await app(req(`/v1/placements/${encodeURIComponent("org/other")}`, "DELETE"));
    expect(none.status).toBe(404);
    expect(((await none.json()) as { error: { message: string } }).error.message).toContain("not loaded on any node");
    expect(unloaded).toEqual(["tiny-chat", "org/other"]);
  });
});

describe("dashboard", () => {
  test("GET / is the page with its script inline, served without the key; the API behind it still needs it", async () => {
    const { app } = setup("sekret");
    const res = await app(req("/"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await res.text();
    expect(html).toContain("<title>exo</title>");
    expect(html).toContain("exo-api-key"); // the script is inlined
    expect(html).not.toContain("/*DASHBOARD_SCRIPT*/");
    expect((await app(req("/v1/placements"))).status).toBe(401);
    expect((await app(req("/v1/placements", "GET", { authorization: "Bearer sekret" }))).status).toBe(200);
  });
});
