// Architecture rules (STYLE §2, §3, §5.13) checked on the source text: line budget, who may import whom,
// who may load MLX (also through other files), no barrels, explicit extensions, env read only in config,
// contracts that point down (cluster/download never import api), one LayerRange, no enums.
import { describe, expect, test } from "bun:test";
import { Glob } from "bun";
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const MLX = "@frost-beta/mlx";

// ---- the rules, as data -------------------------------------------------------------------------

/** No source file may be longer than this (STYLE §5.13: most stay under 200). */
const MAX_LINES = 400;

/** Files at the top of src/ that every area may import. */
const SHARED_FILES = [
  "src/errors.ts",
  "src/log.ts",
  "src/version.ts",
  "src/embedded-root.ts",
  "src/pending-calls.ts",
  "src/ids.ts",
];

/**
 * Pure areas and the other areas each may import. Besides these they may use SHARED_FILES, any
 * `types.ts` (plain type contracts) and files outside src/ (configs/, package.json).
 */
const PURE_AREAS: Record<string, readonly string[]> = {
  protocol: [],
  topology: [],
  config: [],
  catalog: [],
};

/** MLX-free model knowledge (config.json → model arguments, tensor ownership) that pure areas may import. */
const MODEL_KNOWLEDGE = "src/models/spec";

/** The only files that may name config.json in code: everything else asks the model-knowledge module. */
const CONFIG_READERS = [MODEL_KNOWLEDGE];

/** Only these areas may import MLX directly. */
const MLX_AREAS = ["src/models", "src/engine"];

/** Code that must not load MLX even through a chain of static imports (dynamic import() is lazy and allowed). */
const NO_MLX_REACH = [
  MODEL_KNOWLEDGE,
  "src/protocol",
  "src/net",
  "src/topology",
  "src/config",
  "src/catalog",
  "src/download",
  "src/tokenizer",
  "src/cluster",
  "src/api",
  "src/node",
  "src/main.ts",
  "test/unit",
];

/** Only the CLI root imports the subcommands (lazily). */
const CLI_IMPORTERS = ["src/main.ts"];

/** The one barrel file allowed: the model registry. */
const ALLOWED_INDEX_FILES = ["src/models/index.ts"];

/** Where process.env may be read (STYLE §5.10). */
const ENV_READERS = ["src/config", "src/log.ts"];

/** Areas and the areas they must not import, not even for types: the contracts they need live below them. */
const NEVER_IMPORTS: Record<string, readonly string[]> = {
  cluster: ["api"],
  download: ["api"],
};

/** The one file that defines the half-open layer range (STYLE §3); every other type extends or uses it. */
const LAYER_RANGE_HOME = "src/topology/types.ts";

// ---- reading a source tree ---------------------------------------------------------------------

/** Repo-relative file names and their text; the real tree, or a small synthetic one that breaks every rule. */
interface Tree {
  files: string[];
  read(file: string): string;
}

interface Import {
  from: string; // repo-relative importing file
  spec: string; // the specifier as written
  target?: string; // repo-relative resolved file, for relative specifiers
  kind: "value" | "type" | "dynamic";
  line: number;
}

/** Comments blanked (keeping line breaks) so commented-out imports do not count. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " ")).replace(/^\s*\/\/.*$/gm, "");
}

const IMPORT_RE =
  /\b(import|export)\s+(type\s+)?([^;'"]*?\bfrom\s*)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;
const TYPE_ONLY_BRACES = /^\{\s*(type\s+\w+(\s+as\s+\w+)?\s*,?\s*)+\}\s*from\s*$/;

function importsOf(tree: Tree, file: string): Import[] {
  const source = withoutComments(tree.read(file));
  const out: Import[] = [];
  for (const m of source.matchAll(IMPORT_RE)) {
    const spec = m[4] ?? m[5] ?? "";
    if (m[1] === "export" && !m[3]) continue; // `export const x = "..."` is not an import
    const typeOnly = m[2] !== undefined || TYPE_ONLY_BRACES.test(m[3] ?? "");
    const kind = m[5] !== undefined ? "dynamic" : typeOnly ? "type" : "value";
    const target = spec.startsWith(".") ? relative(ROOT, resolve(ROOT, dirname(file), spec)) : undefined;
    out.push({ from: file, spec, target, kind, line: source.slice(0, m.index).split("\n").length });
  }
  return out;
}

const under = (file: string, prefixes: readonly string[]) =>
  prefixes.some((p) => file === p || file.startsWith(`${p}/`));
const areaOf = (file: string) => /^src\/([^/]+)\//.exec(file)?.[1];
const where = (i: Import) => `${i.from}:${i.line} imports "${i.spec}"`;
const srcOf = (tree: Tree) => tree.files.filter((f) => f.startsWith("src/"));
const srcImports = (tree: Tree) => srcOf(tree).flatMap((f) => importsOf(tree, f));

/** The chain of static value imports from `file` that ends at MLX, if there is one. */
function mlxChain(tree: Tree, file: string, seen = new Set<string>()): string[] | undefined {
  if (seen.has(file) || !tree.files.includes(file)) return undefined;
  seen.add(file);
  for (const i of importsOf(tree, file)) {
    if (i.kind !== "value") continue;
    if (i.spec === MLX || i.spec.startsWith(`${MLX}/`)) return [file, MLX];
    const chain = i.target ? mlxChain(tree, i.target, seen) : undefined;
    if (chain) return [file, ...chain];
  }
  return undefined;
}

// ---- the checks: each returns its violations ---------------------------------------------------

const CHECKS: Record<string, (tree: Tree) => string[]> = {
  [`no source file is longer than ${MAX_LINES} lines`]: (tree) =>
    srcOf(tree)
      .map((f) => [f, tree.read(f).replace(/\n$/, "").split("\n").length] as const)
      .filter(([, n]) => n > MAX_LINES)
      .map(([f, n]) => `${f}: ${n} lines`),

  "pure areas import only shared files, type contracts, their own folder and the areas listed": (tree) =>
    srcImports(tree)
      .filter((i) => {
        const area = areaOf(i.from);
        if (area === undefined || !(area in PURE_AREAS) || !i.target?.startsWith("src/")) return false;
        const targetArea = areaOf(i.target);
        if (SHARED_FILES.includes(i.target) || i.target.endsWith("/types.ts") || targetArea === area) return false;
        if (under(i.target, [MODEL_KNOWLEDGE])) return false;
        return !(targetArea !== undefined && PURE_AREAS[area]?.includes(targetArea));
      })
      .map(where),

  [`only ${MLX_AREAS.join(" and ")} import ${MLX}`]: (tree) =>
    srcImports(tree)
      .filter((i) => i.spec.startsWith(MLX) && !under(i.from, MLX_AREAS))
      .map(where),

  "the node process and unit tests never load MLX through a chain of static imports": (tree) =>
    tree.files
      .filter((f) => under(f, NO_MLX_REACH))
      .map((f) => mlxChain(tree, f))
      .filter((c) => c !== undefined)
      .map((c) => c.join(" → ")),

  "nothing but the CLI root imports src/cli": (tree) =>
    srcImports(tree)
      .filter(
        (i) => i.target?.startsWith("src/cli/") && !i.from.startsWith("src/cli/") && !CLI_IMPORTERS.includes(i.from),
      )
      .map(where),

  "relative imports name the file with its extension": (tree) =>
    srcImports(tree)
      .filter((i) => i.target !== undefined && !/\.(ts|json|yaml|yml|txt|node)$/.test(i.spec))
      .map(where),

  "there are no barrel index files besides the model registry": (tree) =>
    srcOf(tree).filter((f) => f.endsWith("/index.ts") && !ALLOWED_INDEX_FILES.includes(f)),

  [`no module outside ${MODEL_KNOWLEDGE} reads or parses config.json`]: (tree) =>
    srcOf(tree)
      .filter((f) => !under(f, CONFIG_READERS))
      .flatMap((f) =>
        withoutComments(tree.read(f))
          .split("\n")
          .map((line, n) => [f, n + 1, line] as const),
      )
      .filter(([, , line]) => /["'`/]config\.json["'`]/.test(line))
      .map(([f, n]) => `${f}:${n}`),

  "only src/config and src/log.ts read the environment": (tree) =>
    srcOf(tree)
      .filter((f) => !under(f, ENV_READERS))
      .flatMap((f) =>
        withoutComments(tree.read(f))
          .split("\n")
          .map((line, n) => [f, n + 1, line] as const),
      )
      .filter(([, , line]) => /\b(process\.env|Bun\.env|import\.meta\.env)\b/.test(line))
      .map(([f, n]) => `${f}:${n}`),

  [`${Object.keys(NEVER_IMPORTS).join(" and ")} import nothing from ${[...new Set(Object.values(NEVER_IMPORTS).flat())].join(", ")}`]:
    (tree) =>
      srcImports(tree)
        .filter((i) => {
          const area = areaOf(i.from);
          const target = i.target && areaOf(i.target);
          return area !== undefined && target !== undefined && NEVER_IMPORTS[area]?.includes(target);
        })
        .map(where),

  [`LayerRange is defined once, in ${LAYER_RANGE_HOME}, and no other type spells out layerStart`]: (tree) => {
    const lines = srcOf(tree).flatMap((f) =>
      withoutComments(tree.read(f))
        .split("\n")
        .map((line, n) => ({ f, n: n + 1, line })),
    );
    const definitions = lines.filter((l) => /\b(interface|type|class)\s+LayerRange\b/.test(l.line));
    const fields = lines.filter((l) => /\blayerStart\??\s*:\s*number\b/.test(l.line));
    const home = (l: { f: string }) => l.f === LAYER_RANGE_HOME;
    const homeOk = definitions.filter(home).length === 1 && fields.filter(home).length === 1;
    return [
      ...definitions.filter((l) => !home(l)).map((l) => `${l.f}:${l.n} defines LayerRange`),
      ...fields.filter((l) => !home(l)).map((l) => `${l.f}:${l.n} spells out layerStart`),
      ...(homeOk ? [] : [`${LAYER_RANGE_HOME} does not define LayerRange exactly once`]),
    ];
  },

  "no TypeScript enums (as const objects and literal unions instead)": (tree) =>
    srcOf(tree)
      .flatMap((f) =>
        withoutComments(tree.read(f))
          .split("\n")
          .map((line, n) => [f, n + 1, line] as const),
      )
      .filter(([, , line]) => /\benum\s+\w+\s*\{/.test(line))
      .map(([f, n]) => `${f}:${n}`),
};

// ---- the real tree, and a synthetic tree proving each check can fail ---------------------------

// This file is left out: its synthetic sources below quote forbidden imports on purpose.
const self = relative(ROOT, import.meta.path);
const realFiles = ["src/**/*.ts", "test/unit/**/*.ts", "test/helpers/**/*.ts"]
  .flatMap((p) => [...new Glob(p).scanSync({ cwd: ROOT })])
  .filter((f) => f !== self)
  .sort();
const cache = new Map<string, string>();
const realTree: Tree = {
  files: realFiles,
  read: (f) => cache.get(f) ?? cache.set(f, readFileSync(join(ROOT, f), "utf8")).get(f) ?? "",
};

const badSources: Record<string, string> = {
  "src/protocol/frame.ts": `import { x } from "../net/link.ts";\nimport type { Y } from "../engine/types.ts";\n${"//\n".repeat(401)}`,
  "src/net/link.ts": `import { core } from "@frost-beta/mlx";\nexport const x = 1;\n`,
  "src/api/app.ts": `import { helper } from "./util";\nimport start from "../cli/start.ts";\nconst key = process.env.KEY;\n`,
  "src/cli/start.ts": `// import { core } from "@frost-beta/mlx";\nexport default 1;\n`,
  "src/cluster/index.ts": `export * from "./service.ts";\n`,
  "src/cluster/service.ts": `import { run } from "../engine/local.ts";\nconst lazy = () => import("../engine/local.ts");\n`,
  "src/engine/local.ts": `import { core as mx } from "@frost-beta/mlx";\nexport const run = 1;\n`,
  "src/engine/types.ts": `export interface Y { a: number }\n`,
  "src/download/shape.ts": `import { describeConfig } from "../models/spec/describe.ts";\n// reads config.json\nconst c = await Bun.file(\`\${dir}/config.json\`).json();\nconst d = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));\n`,
  "src/models/spec/describe.ts": `import { need } from "../base.ts";\nexport const CONFIG_FILE = "config.json";\n`,
  "src/models/base.ts": `import { core as mx } from "@frost-beta/mlx";\n`,
  "src/cluster/stage.ts": `import { x } from "../api/app.ts";\nexport const enum Phase { Prefill, Decode }\n`,
  "src/download/store.ts": `import type { ModelStore } from "../api/deps.ts";\nexport interface LayerRange {\n  layerStart: number;\n  layerEnd: number;\n}\n`,
  "src/download/progress.ts": `export function f(layerStart: number, layerEnd: number) {}\n`,
};
const badTree: Tree = { files: Object.keys(badSources).sort(), read: (f) => badSources[f] ?? "" };

const expectedInBadTree: Record<string, string[]> = {
  [`no source file is longer than ${MAX_LINES} lines`]: ["src/protocol/frame.ts: 403 lines"],
  "pure areas import only shared files, type contracts, their own folder and the areas listed": [
    'src/protocol/frame.ts:1 imports "../net/link.ts"',
  ],
  [`only ${MLX_AREAS.join(" and ")} import ${MLX}`]: ['src/net/link.ts:1 imports "@frost-beta/mlx"'],
  "the node process and unit tests never load MLX through a chain of static imports": [
    "src/cluster/index.ts → src/cluster/service.ts → src/engine/local.ts → @frost-beta/mlx",
    "src/cluster/service.ts → src/engine/local.ts → @frost-beta/mlx",
    "src/download/shape.ts → src/models/spec/describe.ts → src/models/base.ts → @frost-beta/mlx",
    "src/models/spec/describe.ts → src/models/base.ts → @frost-beta/mlx",
    "src/net/link.ts → @frost-beta/mlx",
    "src/protocol/frame.ts → src/net/link.ts → @frost-beta/mlx",
  ],
  "nothing but the CLI root imports src/cli": ['src/api/app.ts:2 imports "../cli/start.ts"'],
  "relative imports name the file with its extension": ['src/api/app.ts:1 imports "./util"'],
  "there are no barrel index files besides the model registry": ["src/cluster/index.ts"],
  "only src/config and src/log.ts read the environment": ["src/api/app.ts:3"],
  [`no module outside ${MODEL_KNOWLEDGE} reads or parses config.json`]: [
    "src/download/shape.ts:3",
    "src/download/shape.ts:4",
  ],
  "cluster and download import nothing from api": [
    'src/cluster/stage.ts:1 imports "../api/app.ts"',
    'src/download/store.ts:1 imports "../api/deps.ts"',
  ],
  [`LayerRange is defined once, in ${LAYER_RANGE_HOME}, and no other type spells out layerStart`]: [
    "src/download/store.ts:2 defines LayerRange",
    "src/download/progress.ts:1 spells out layerStart",
    "src/download/store.ts:3 spells out layerStart",
    `${LAYER_RANGE_HOME} does not define LayerRange exactly once`,
  ],
  "no TypeScript enums (as const objects and literal unions instead)": ["src/cluster/stage.ts:2"],
};

describe("architecture", () => {
  test("reads the real tree (guards the checks against reading nothing)", () => {
    expect(realFiles.length).toBeGreaterThan(10);
    const imports = srcImports(realTree);
    expect(imports.some((i) => i.spec === MLX)).toBe(true);
    expect(imports.some((i) => i.kind === "type")).toBe(true);
    expect(imports.some((i) => i.kind === "dynamic" && i.spec.startsWith("./cli/"))).toBe(true);
  });

  for (const [name, check] of Object.entries(CHECKS)) {
    test(name, () => {
      expect(check(realTree)).toEqual([]);
    });
    test(`catches a violation: ${name}`, () => {
      expect(check(badTree)).toEqual(expectedInBadTree[name] ?? ["(no example)"]);
    });
  }
});
