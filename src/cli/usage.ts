// `--help` and usage screens without the test knobs: citty can hide subcommands but not flags, so the flags named in
// HIDDEN_FLAGS are dropped from a command's args before citty renders its usage. They still parse as before.
import { renderUsage, type ArgsDef, type CommandDef } from "citty";
import { HIDDEN_FLAGS } from "./node-args.ts";

/** Print `cmd`'s usage (as a subcommand of `parent`) without the hidden flags. */
export async function showVisibleUsage<T extends ArgsDef = ArgsDef>(
  cmd: CommandDef<T>,
  parent?: CommandDef<T>,
): Promise<void> {
  console.log(`${await renderUsage(await visibleCommand(cmd as CommandDef), parent as CommandDef | undefined)}\n`);
}

/** `cmd` with its args minus HIDDEN_FLAGS (everything else as it is). */
export async function visibleCommand(cmd: CommandDef): Promise<CommandDef> {
  const args = (typeof cmd.args === "function" ? await cmd.args() : await cmd.args) ?? {};
  const visible = Object.fromEntries(Object.entries(args).filter(([name]) => !HIDDEN_FLAGS.includes(name)));
  return { ...cmd, args: visible as ArgsDef };
}
