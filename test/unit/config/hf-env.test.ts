// Hugging Face settings from the environment, read as huggingface_hub reads them.
import { describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadHfEnv, parseHfEnv } from "../../../src/config/hf-env.ts";

describe("parseHfEnv", () => {
  test("defaults to huggingface.co and ~/.cache/huggingface/hub, online", () => {
    expect(parseHfEnv({}, "/home/u")).toEqual({
      endpoint: "https://huggingface.co",
      hubCacheDir: "/home/u/.cache/huggingface/hub",
      offline: false,
      tokenFile: "/home/u/.cache/huggingface/token",
    });
  });

  test("honours HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE", () => {
    const env = { HF_ENDPOINT: "http://mirror:8080/", HF_HOME: "/hf", HF_TOKEN: "hf_abc", HF_HUB_OFFLINE: "1" };
    expect(parseHfEnv(env, "/home/u")).toEqual({
      endpoint: "http://mirror:8080",
      token: "hf_abc",
      hubCacheDir: "/hf/hub",
      offline: true,
      tokenFile: "/hf/token",
    });
    expect(parseHfEnv({ ...env, HF_HUB_CACHE: "/fast/hub" }).hubCacheDir).toBe("/fast/hub");
  });
});

describe("loadHfEnv", () => {
  test("reads the token file under HF_HOME when HF_TOKEN is unset", async () => {
    const home = await mkdtemp(join(tmpdir(), "exo-hf-"));
    try {
      await writeFile(join(home, "token"), "hf_from_file\n");
      expect((await loadHfEnv({ HF_HOME: home })).token).toBe("hf_from_file");
      expect((await loadHfEnv({ HF_HOME: home, HF_TOKEN: "hf_env" })).token).toBe("hf_env");
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
