// exo's routes, model listing, bearer auth, CORS and routing errors, in-process over fakes.
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { FAKE_MODELS, fakeDeps } from "../../helpers/fake-inference.ts";

const BASE = "http://exo.test";

function setup(apiKey?: string) {
  const fake = fakeDeps(undefined, apiKey ? { apiKey } : {});
  return { ...fake, app: createApp(fake.deps) };
}

const get = (path: string, headers: Record<string, string> = {}) => new Request(BASE + path, { headers });

/** A response body as JSON (typed loosely: tests assert on its shape). */
const body = (res: Response): Promise<any> => res.json();

describe("models", () => {
  test("GET /v1/models lists every served model in OpenAI's list shape", async () => {
    const { app } = setup();
    const json = await body(await app(get("/v1/models")));
    expect(json.object).toBe("list");
    expect(json.data.map((m: { id: string }) => m.id)).toEqual(FAKE_MODELS.map((m) => m.id));
    expect(json.data[0]).toMatchObject({ object: "model", owned_by: "exo", layers: 4 });
    expect(typeof json.data[0].created).toBe("number");
    // Beside OpenAI's fields: whether this node holds the model's files (the store's /modelpool says).
    const downloaded = Object.fromEntries(
      json.data.map((m: { id: string; downloaded: boolean }) => [m.id, m.downloaded]),
    );
    expect(downloaded).toEqual({ "tiny-chat": true, "llama-3.2-1b": false });
  });

  test("GET /v1/models/{id} returns one model, and an unknown id is a 404 model_not_found", async () => {
    const { app } = setup();
    expect((await body(await app(get("/v1/models/llama-3.2-1b")))).id).toBe("llama-3.2-1b");
    const res = await app(get("/v1/models/nope"));
    expect(res.status).toBe(404);
    expect((await body(res)).error.code).toBe("model_not_found");
  });
});

describe("exo routes", () => {
  test("/healthcheck and /topology keep their shapes", async () => {
    const { app, deps } = setup();
    expect(await body(await app(get("/healthcheck")))).toEqual({ status: "ok" });
    expect(await body(await app(get("/topology")))).toEqual(deps.topology() as object);
  });

  test("GET /modelpool streams one event per model then [DONE], or one JSON object on request", async () => {
    const { app, deps } = setup();
    const res = await app(get("/modelpool"));
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = (await res.text()).trim().split("\n\n");
    expect(events.at(-1)).toBe("data: [DONE]");
    const pool = (await deps.models.modelPool()) as Record<string, unknown>;
    expect(events.slice(0, -1).map((e) => JSON.parse(e.slice(6)))).toEqual(
      Object.entries(pool).map(([k, v]) => ({ [k]: v })),
    );
    const json = await body(await app(get("/modelpool", { accept: "application/json" })));
    expect(json).toEqual(pool);
  });

  test("POST /download starts a download, needs a model, and refuses an unknown one", async () => {
    const { app, started } = setup();
    const post = (body: unknown) =>
      app(new Request(`${BASE}/download`, { method: "POST", body: JSON.stringify(body) }));
    const ok = await post({ model: "llama-3.2-1b" });
    expect(await body(ok)).toEqual({ status: "success", message: "Download started for model: llama-3.2-1b" });
    expect(started).toEqual(["llama-3.2-1b"]);
    const missing = await post({});
    expect(missing.status).toBe(400);
    expect((await body(missing)).error.param).toBe("model");
    const unknown = await post({ model: "gpt-5" });
    expect(unknown.status).toBe(404);
    expect((await body(unknown)).error.code).toBe("model_not_found");
  });

  test("GET /v1/download/progress returns the store's progress", async () => {
    const { app, deps } = setup();
    expect(await body(await app(get("/v1/download/progress")))).toEqual(deps.models.downloadProgress() as object);
  });

  test("DELETE /models/{id} deletes once, then says there is nothing to delete", async () => {
    const { app } = setup();
    const del = (id: string) => app(new Request(`${BASE}/models/${id}`, { method: "DELETE" }));
    expect((await del("tiny-chat")).status).toBe(200);
    const again = await del("tiny-chat");
    expect(again.status).toBe(404);
    expect((await body(again)).error.code).toBe("not_found");
    expect((await body(await del("nope"))).error.code).toBe("model_not_found");
  });

  test("a broken percent-encoding in DELETE /models/{id} is a 400 naming the segment, and the app keeps serving", async () => {
    const { app } = setup();
    const res = await app(new Request(`${BASE}/models/%E0%A4%A`, { method: "DELETE" }));
    expect(res.status).toBe(400);
    expect((await body(res)).error).toMatchObject({ type: "invalid_request_error", code: "invalid_value" });
    expect((await body(await app(get("/v1/models/%zz")))).error.message).toContain(
      '"%zz" is not valid percent-encoding',
    );
    expect((await app(get("/healthcheck"))).status).toBe(200);
  });

  test("GET /debug/state serves the node's debug state only when the node provides one", async () => {
    expect((await setup().app(get("/debug/state"))).status).toBe(404);
    const fake = fakeDeps(undefined, { debug: { state: async () => ({ liveRequests: 0 }) } });
    expect(await body(await createApp(fake.deps)(get("/debug/state")))).toEqual({ liveRequests: 0 });
  });

  test("GET /debug/net and POST /debug/health-burst answer from the node's debug deps, behind the API key", async () => {
    const bursts: [string, number][] = [];
    const fake = fakeDeps(undefined, {
      apiKey: "s3cret",
      debug: {
        net: () => ({ port: 50051 }),
        healthBurst: async (peer, count) => {
          bursts.push([peer, count]);
          return peer === "gone"
            ? { ok: false, body: { ok: false, code: "E_PEER_DOWN" } }
            : { ok: true, body: { peer } };
        },
      },
    });
    const app = createApp(fake.deps);
    const auth = { authorization: "Bearer s3cret" };
    const burst = (query: string, headers = auth) =>
      app(new Request(`${BASE}/debug/health-burst?${query}`, { method: "POST", headers }));
    expect((await app(get("/debug/net"))).status).toBe(401);
    expect((await app(get("/debug/net", { authorization: "Bearer s3cre" }))).status).toBe(401);
    expect((await burst("peer=b", {} as typeof auth)).status).toBe(401);
    expect(bursts).toEqual([]);
    expect(await body(await app(get("/debug/net", auth)))).toEqual({ port: 50051 });
    expect(await body(await burst("peer=b&count=3"))).toEqual({ peer: "b" });
    expect((await burst("peer=gone")).status).toBe(502);
    await burst("peer=b&count=99999");
    await burst("peer=b&count=zero");
    expect(bursts).toEqual([
      ["b", 3],
      ["gone", 10],
      ["b", 1000],
      ["b", 10],
    ]);
    expect((await app(get("/debug/health-burst", auth))).status).toBe(405);
  });

  test("a node without debug deps has no /debug/net or /debug/health-burst", async () => {
    const { app } = setup();
    expect((await app(get("/debug/net"))).status).toBe(404);
  });
});

describe("auth, CORS and routing", () => {
  test("with an API key every route but /healthcheck needs the bearer token", async () => {
    const { app } = setup("s3cret");
    expect((await app(get("/healthcheck"))).status).toBe(200);
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "s3cret" }] as Record<
      string,
      string
    >[]) {
      const res = await app(get("/v1/models", headers));
      expect(res.status).toBe(401);
      expect((await body(res)).error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });
    }
    expect((await app(get("/topology"))).status).toBe(401);
    expect((await app(get("/v1/models", { authorization: "Bearer s3cret" }))).status).toBe(200);
  });

  test("without an API key no token is needed", async () => {
    expect((await setup().app(get("/v1/models"))).status).toBe(200);
  });

  test("answers CORS preflights and puts CORS headers on answers and errors", async () => {
    const { app } = setup();
    const pre = await app(new Request(`${BASE}/v1/chat/completions`, { method: "OPTIONS" }));
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-headers")).toContain("authorization");
    const sdk = await app(
      new Request(`${BASE}/v1/chat/completions`, {
        method: "OPTIONS",
        headers: { "access-control-request-headers": "authorization, x-stainless-os" },
      }),
    );
    expect(sdk.headers.get("access-control-allow-headers")).toBe("authorization, x-stainless-os");
    expect((await app(get("/v1/models"))).headers.get("access-control-allow-origin")).toBe("*");
    expect((await app(get("/nope"))).headers.get("access-control-allow-origin")).toBe("*");
  });

  test("an unknown path is a 404 and a wrong method a 405, both in OpenAI's envelope", async () => {
    const { app } = setup();
    const missing = await app(get("/v2/everything"));
    expect(missing.status).toBe(404);
    expect((await body(missing)).error.message).toContain("/v2/everything");
    const wrong = await app(get("/v1/chat/completions"));
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect((await body(wrong)).error.code).toBe("method_not_allowed");
  });
});
