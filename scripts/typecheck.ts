// `bun run typecheck`: tsc over the project. @frost-beta/mlx ships its TypeScript sources, which tsc then checks
// under our strict settings; their errors are not ours to fix, so only errors in our own files fail the run.
export {};

const proc = Bun.spawn([process.execPath, "x", "tsc", "--noEmit", "-p", "."], { stdout: "pipe", stderr: "inherit" });
const output = await new Response(proc.stdout).text();
await proc.exited;
// An error starts at column 0 with `path(line,col): error TS…`; indented lines belong to the error above.
const blocks = output.split(/\n(?=\S)/).filter((block) => /error TS\d+/.test(block));
const ours = blocks.filter((block) => !block.startsWith("node_modules/"));
if (ours.length > 0) console.log(ours.join("\n"));
console.log(
  `typecheck: ${ours.length} error(s) in the project, ${blocks.length - ours.length} ignored in node_modules`,
);
process.exit(ours.length > 0 ? 1 : 0);
