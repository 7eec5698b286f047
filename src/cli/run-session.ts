// What `exo run` does once its node is up: prepare the model on the cluster with visible progress, then
// answer --prompt once (streamed to stdout) or chat in the terminal. The node itself is started by run.ts.
import { NodeError } from "../errors.ts";
import type { GenerateRequest, InferenceService } from "../cluster/types.ts";
import type { StatusFields } from "../cluster/messages.ts";
import { runChatRepl, streamReply } from "./chat-repl.ts";
import { makePrepareProgress } from "./prepare-progress.ts";
import { DEFAULT_PEER_WAIT_MS } from "./wait-peers.ts";

/** The slice of the node `exo run` needs (the cluster service provides both). */
export interface RunBackend {
  inference: InferenceService;
  prepare(modelId: string, onProgress: (status: StatusFields) => void): Promise<unknown>;
}

export interface RunOptions {
  modelId: string;
  prompt?: string;
  temperature: number;
  maxTokens: number;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  /** Progress and notices; keeps stdout for the answer. */
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Where SIGINT comes from (`process`). */
  signals?: NodeJS.EventEmitter;
}

/** Greedy by default: the terminal chat should give the same answer to the same question. */
export const RUN_DEFAULT_TEMPERATURE = 0;
/** Long enough for a chat answer, short enough that a rambling model stops. */
export const RUN_DEFAULT_MAX_TOKENS = 1024;

/** Validate `exo run`'s own flags. @throws E_CONFIG_INVALID naming the flag */
export function parseRunFlags(
  args: { model?: string; prompt?: string; temperature?: string; "max-tokens"?: string; "peer-wait-ms"?: string },
  defaultModel: string,
) {
  const temperature = args.temperature === undefined ? RUN_DEFAULT_TEMPERATURE : Number(args.temperature);
  if (!Number.isFinite(temperature) || temperature < 0 || temperature > 2) {
    throw new NodeError("E_CONFIG_INVALID", `--temperature: expected a number from 0 to 2, got "${args.temperature}"`);
  }
  const maxTokens = args["max-tokens"] === undefined ? RUN_DEFAULT_MAX_TOKENS : Number(args["max-tokens"]);
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 1) {
    throw new NodeError("E_CONFIG_INVALID", `--max-tokens: expected a positive integer, got "${args["max-tokens"]}"`);
  }
  const peerWaitMs = args["peer-wait-ms"] === undefined ? DEFAULT_PEER_WAIT_MS : Number(args["peer-wait-ms"]);
  if (!Number.isSafeInteger(peerWaitMs) || peerWaitMs < 0) {
    throw new NodeError(
      "E_CONFIG_INVALID",
      `--peer-wait-ms: expected milliseconds >= 0, got "${args["peer-wait-ms"]}"`,
    );
  }
  return { modelId: args.model || defaultModel, prompt: args.prompt, temperature, maxTokens, peerWaitMs };
}

/** Exit code when Ctrl-C interrupted a --prompt answer (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130;

/** Prepare, then answer or chat. Returns the exit code. @throws E_MODEL_UNKNOWN, E_MODEL_TOO_BIG and the service's errors */
export async function runSession(backend: RunBackend, opts: RunOptions): Promise<number> {
  const progress = makePrepareProgress(opts.modelId, { write: (t) => opts.stderr.write(t), isTTY: opts.stderr.isTTY });
  progress.start();
  try {
    await backend.prepare(opts.modelId, progress.onProgress);
  } finally {
    progress.finish();
  }
  const template: Omit<GenerateRequest, "messages" | "prompt"> = {
    modelId: opts.modelId,
    sampling: { temperature: opts.temperature, topP: 1, topK: 0 },
    maxTokens: opts.maxTokens,
    stop: [],
  };
  if (opts.prompt !== undefined) return answerOnce(backend.inference, template, opts);
  await runChatRepl({
    inference: backend.inference,
    template,
    input: opts.stdin,
    output: opts.stdout,
    terminal: opts.stdin.isTTY === true && opts.stdout.isTTY === true,
    signals: opts.signals,
    banner: `Chatting with ${opts.modelId}. Ctrl-C stops a reply, Ctrl-D quits.`,
  });
  return 0;
}

// --- internal ---

async function answerOnce(
  inference: InferenceService,
  template: Omit<GenerateRequest, "messages" | "prompt">,
  opts: RunOptions,
): Promise<number> {
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  opts.signals?.on("SIGINT", onInterrupt);
  try {
    const write = (text: string) => void opts.stdout.write(text);
    const { end } = await streamReply(
      { inference, template, write },
      [{ role: "user", content: opts.prompt ?? "" }],
      abort.signal,
    );
    write("\n");
    return end === "interrupted" ? EXIT_INTERRUPTED : 0;
  } finally {
    opts.signals?.off("SIGINT", onInterrupt);
  }
}
