#!/usr/bin/env bun
// Entry point: the root citty command. Subcommands load lazily so `exo models` never loads MLX.
// This is the only file that calls process.exit.
import { defineCommand, runMain } from "citty";
import { VERSION } from "./version.ts";

const main = defineCommand({
  meta: { name: "exo", version: VERSION, description: "Run one large language model across several machines." },
  subCommands: {
    start: () => import("./cli/start.ts").then((m) => m.default),
    run: () => import("./cli/run.ts").then((m) => m.default),
    models: () => import("./cli/models.ts").then((m) => m.default),
    pull: () => import("./cli/pull.ts").then((m) => m.default),
    rm: () => import("./cli/rm.ts").then((m) => m.default),
    topology: () => import("./cli/topology.ts").then((m) => m.default),
    doctor: () => import("./cli/doctor.ts").then((m) => m.default),
    runner: () => import("./cli/runner.ts").then((m) => m.default),
  },
});

// Bare `exo` (no verb, only flags) means `exo start`.
const argv = process.argv.slice(2);
const verbs = new Set(["start", "run", "models", "pull", "rm", "topology", "doctor", "runner"]);
const first = argv[0];
const wantsMeta = argv.includes("--help") || argv.includes("-h") || argv.includes("--version") || argv.includes("-v");
const rawArgs = first === undefined || (first.startsWith("-") && !wantsMeta) ? ["start", ...argv] : argv;

process.on("unhandledRejection", (err) => {
  console.error(err);
});

await runMain(main, { rawArgs });
