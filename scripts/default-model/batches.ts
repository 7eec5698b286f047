// Training batches for the default model: chat examples rendered with the model's own chat template,
// packed into fixed-length rows; loss only on the assistant's tokens, attention only within an example.
import type { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { EOS_ID, PAD_ID } from "./hf-files.ts";
import type { TemplateMessage } from "../../src/tokenizer/chat-template.ts";
import type { TaskExample } from "./tasks.ts";
import type { ToolChat } from "./tool-tasks.ts";

export interface Batch {
  tokens: number[][];
  targets: number[][];
  weights: number[][];
  /** Example index of each position (-1 for padding); attention stays inside one segment. */
  segments: number[][];
}

/** Targets that end an answer part (a space inside a range, the final <|end|>) weigh more: stopping is the hard part. */
const STOP_WEIGHT = 3;
/** Targets inside an emphasized span (a city copied from the question) weigh more: copying is the hard part there. */
const EMPHASIS_WEIGHT = 4;
const SPACE_ID = 32;
const POOL_SIZE = 8;

/** A chat to train on: optional system prompt, then one or more task turns. */
export interface Conversation {
  system?: string;
  turns: TaskExample[];
}

/** A chat's token ids; per id whether it is part of an assistant answer (its <|end|> included) and emphasized. */
export interface EncodedChat {
  ids: number[];
  isAnswer: boolean[];
  emphasis?: boolean[];
}

/** Token ids of a conversation, and for each id whether it is part of an assistant answer (its <|end|> included). */
export function encodeConversation(tokenizer: Tokenizer, chat: Conversation | ToolChat): EncodedChat {
  if ("messages" in chat) return encodeToolChat(tokenizer, chat);
  const messages: TemplateMessage[] = chat.system ? [{ role: "system", content: chat.system }] : [];
  const isAnswer: boolean[] = [];
  let ids: number[] = [];
  for (const turn of chat.turns) {
    messages.push({ role: "user", content: turn.prompt });
    const promptLength = tokenizer.encodeChat(messages, { addGenerationPrompt: true }).length;
    messages.push({ role: "assistant", content: turn.answer });
    ids = tokenizer.encodeChat(messages, { addGenerationPrompt: false });
    while (isAnswer.length < ids.length) isAnswer.push(isAnswer.length >= promptLength);
  }
  return { ids, isAnswer };
}

/** A chat with tools offered: every assistant message (a tool call or a sentence) is an answer. */
function encodeToolChat(tokenizer: Tokenizer, chat: ToolChat): EncodedChat {
  const isAnswer: boolean[] = [];
  let ids: number[] = [];
  for (let i = 0; i < chat.messages.length; i++) {
    if (chat.messages[i]!.role !== "assistant") continue;
    const before = chat.messages.slice(0, i);
    const promptLength = tokenizer.encodeChat(before, { tools: chat.tools, addGenerationPrompt: true }).length;
    ids = tokenizer.encodeChat(chat.messages.slice(0, i + 1), { tools: chat.tools, addGenerationPrompt: false });
    while (isAnswer.length < promptLength) isAnswer.push(false);
    while (isAnswer.length < ids.length) isAnswer.push(true);
  }
  return { ids, isAnswer, emphasis: emphasize(tokenizer, ids, isAnswer, chat.emphasis ?? []) };
}

/** Marks every answer position that holds one of `spans` (their token ids found verbatim in the answer). */
function emphasize(tokenizer: Tokenizer, ids: number[], isAnswer: boolean[], spans: string[]): boolean[] {
  const marks = ids.map(() => false);
  for (const span of spans) {
    const needle = tokenizer.encode(span, { addSpecialTokens: false });
    for (let i = 0; i + needle.length <= ids.length; i++) {
      if (!isAnswer[i] || !needle.every((id, j) => ids[i + j] === id)) continue;
      for (let j = 0; j < needle.length; j++) marks[i + j] = true;
    }
  }
  return marks;
}

/** Returns a function that packs conversations from `next` into `rows` rows of `rowLength` tokens, filling gaps from a small pool. */
export function makeBatcher(
  tokenizer: Tokenizer,
  next: () => Conversation | ToolChat,
  rows: number,
  rowLength: number,
): () => Batch {
  const pool: EncodedChat[] = [];
  return () => {
    const batch: Batch = { tokens: [], targets: [], weights: [], segments: [] };
    for (let r = 0; r < rows; r++) {
      const row = {
        tokens: [] as number[],
        targets: [] as number[],
        weights: [] as number[],
        segments: [] as number[],
      };
      for (let seg = 0; ; seg++) {
        while (pool.length < POOL_SIZE) {
          const { ids, isAnswer, emphasis } = encodeConversation(tokenizer, next());
          // A long chat is cut to one row; its first turns still teach.
          pool.push({
            ids: ids.slice(0, rowLength),
            isAnswer: isAnswer.slice(0, rowLength),
            emphasis: emphasis?.slice(0, rowLength),
          });
        }
        const room = rowLength - row.tokens.length;
        const pick = pool.findIndex((c) => c.ids.length <= room);
        if (pick < 0) break;
        const { ids, isAnswer, emphasis } = pool.splice(pick, 1)[0]!;
        for (let i = 0; i < ids.length; i++) {
          const target = i + 1 < ids.length ? ids[i + 1]! : PAD_ID;
          const stressed = emphasis?.[i + 1] === true ? EMPHASIS_WEIGHT : 1;
          const stop = target === EOS_ID || target === SPACE_ID ? STOP_WEIGHT : 1;
          const weight = isAnswer[i + 1] === true ? Math.max(stressed, stop) : 0;
          row.tokens.push(ids[i]!);
          row.targets.push(target);
          row.weights.push(weight);
          row.segments.push(seg);
        }
      }
      while (row.tokens.length < rowLength) {
        row.tokens.push(PAD_ID);
        row.targets.push(PAD_ID);
        row.weights.push(0);
        row.segments.push(-1);
      }
      batch.tokens.push(row.tokens);
      batch.targets.push(row.targets);
      batch.weights.push(row.weights);
      batch.segments.push(row.segments);
    }
    return batch;
  };
}
