// The terminal chat of `exo run`: one streamed reply at a time, history kept across turns,
// Ctrl-C stops the reply in progress (the node keeps running), Ctrl-D on an empty line quits.
import { createInterface } from "node:readline";
import { errorCode } from "../errors.ts";
import type { ChatMessage, GenerateRequest, InferenceService } from "../cluster/types.ts";

export interface ReplyOptions {
  inference: InferenceService;
  /** Everything of the request but the messages. */
  template: Omit<GenerateRequest, "messages" | "prompt">;
  write: (text: string) => void;
}

export type ReplyEnd = "stop" | "length" | "interrupted";

/** Stream one answer to `write`; returns the text shown and why it ended. Throws the service's errors. */
export async function streamReply(
  opts: ReplyOptions,
  messages: ChatMessage[],
  signal: AbortSignal,
): Promise<{ text: string; end: ReplyEnd }> {
  let text = "";
  try {
    for await (const event of opts.inference.generate({ ...opts.template, messages }, signal)) {
      if (event.kind === "done") return { text, end: event.finishReason };
      text += event.text;
      opts.write(event.text);
    }
  } catch (err) {
    if (signal.aborted || errorCode(err) === "E_CANCELLED") return { text, end: "interrupted" };
    throw err;
  }
  return { text, end: signal.aborted ? "interrupted" : "stop" };
}

export interface ReplOptions extends Omit<ReplyOptions, "write"> {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Raw-mode line editing; Ctrl-C arrives as a keypress only in this mode. */
  terminal: boolean;
  /** Also treat this emitter's SIGINT as Ctrl-C (`process`: piped input, or `kill -INT`). */
  signals?: NodeJS.EventEmitter;
  banner?: string;
}

/** Run the chat until the input ends (Ctrl-D or EOF). Returns the conversation. */
export async function runChatRepl(opts: ReplOptions): Promise<ChatMessage[]> {
  const write = (text: string) => void opts.output.write(text);
  const rl = createInterface({ input: opts.input, output: opts.output, terminal: opts.terminal, prompt: ">>> " });
  const history: ChatMessage[] = [];
  let reply: AbortController | undefined;
  let closed = false;
  // Piped input may end while a reply is still streaming; the remaining lines are still delivered.
  rl.on("close", () => (closed = true));
  const prompt = () => closed || rl.prompt();
  const onInterrupt = () => {
    if (reply) return reply.abort();
    if (closed) return;
    // At the prompt Ctrl-C clears the line, as shells do; quitting is Ctrl-D.
    write(rl.line.length > 0 ? "^C\n" : "^C (Ctrl-D quits)\n");
    rl.write(null, { ctrl: true, name: "u" });
    prompt();
  };
  rl.on("SIGINT", onInterrupt);
  opts.signals?.on("SIGINT", onInterrupt);
  if (opts.banner) write(`${opts.banner}\n`);
  prompt();
  try {
    for await (const line of rl) {
      const content = line.trim();
      if (content.length === 0) {
        prompt();
        continue;
      }
      history.push({ role: "user", content });
      reply = new AbortController();
      try {
        const { text, end } = await streamReply({ ...opts, write }, [...history], reply.signal);
        // A stopped reply stays in the history as far as it went: that is what the user saw.
        history.push({ role: "assistant", content: text });
        write(end === "interrupted" ? " [stopped]\n" : end === "length" ? " [max tokens]\n" : "\n");
      } catch (err) {
        history.pop();
        write(`\nerror: ${(err as Error).message}\n`);
      } finally {
        reply = undefined;
      }
      prompt();
    }
  } finally {
    opts.signals?.off("SIGINT", onInterrupt);
    rl.close();
  }
  write("\n");
  return history;
}
