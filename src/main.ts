#!/usr/bin/env bun
// Entry point: the root citty command. Subcommands load lazily so `exo models` never loads MLX.
// This is the only file that calls process.exit.
import { defineCommand, runCommand, runMain, type CommandDef } from "citty";
import { showVisibleUsage } from "./cli/usage.ts";
import { isNodeError } from "./errors.ts";
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
    keygen: () => import("./cli/keygen.ts").then((m) => m.default),
    runner: () => import("./cli/runner.ts").then((m) => m.default),
  },
});

// Bare `exo` (no verb, only flags) means `exo start`.
const argv = process.argv.slice(2);
const first = argv[0];
const wantsMeta = argv.includes("--help") || argv.includes("-h") || argv.includes("--version") || argv.includes("-v");
const rawArgs = first === undefined || (first.startsWith("-") && !wantsMeta) ? ["start", ...argv] : argv;

// A node must outlive a stray rejection in one request; log it loudly instead of dying.
process.on("unhandledRejection", (err) => {
  console.error(err);
});

if (wantsMeta) {
  await runMain(main, { rawArgs, showUsage: showVisibleUsage });
} else {
  try {
    await runCommand(main, { rawArgs });
  } catch (err) {
    // Our own errors are for people: message and code, no stack. Usage errors get citty's usage screen.
    if (isNodeError(err)) console.error(`exo: ${err.message} [${err.code}]`);
    else if (err instanceof Error && err.name === "CLIError") {
      // A missing argument of `exo pull` (doctor, rm, ...) shows that command's usage, not the whole tool's.
      const loadSub = (main.subCommands as Record<string, () => Promise<CommandDef>>)[rawArgs[0] ?? ""];
      if (loadSub) await showVisibleUsage(await loadSub(), main);
      else await showVisibleUsage(main);
      console.error(err.message);
    } else console.error(err);
    process.exit(1);
  }
}
