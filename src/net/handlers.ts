// The node's message handlers (one per type) and how frames reach them: a request (with `id`) always
// gets an answer or an ERROR, a one-way message is delivered and a failure logged, a self-send runs locally.
import { NodeError, isNodeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { Message, MessageTypeName } from "../protocol/types.ts";
import type { Link } from "./link.ts";
import type { MessageHandler, Reply } from "./transport.ts";

const log = logger("net");
const EMPTY = new Uint8Array(0);
/** What a probe (`exo doctor`) may ask; it is not a cluster member, so nothing else of the node is its business. */
const PROBE_TYPES: ReadonlySet<MessageTypeName> = new Set(["HEALTH", "TOPOLOGY_REQ"]);

function errorReply(err: unknown): Reply {
  return {
    type: "ERROR",
    fields: {
      code: isNodeError(err) ? err.code : "E_INTERNAL",
      message: err instanceof Error ? err.message : String(err),
    },
  };
}

/** One handler per message type, and the rules for running them (see the file header). */
export class HandlerTable {
  private readonly handlers = new Map<MessageTypeName, MessageHandler>();
  constructor(private readonly selfId: string) {}

  set(type: MessageTypeName, handler: MessageHandler): void {
    this.handlers.set(type, handler);
  }

  /** A request to this node itself: the handler's reply as a Message (OK when it returns nothing). */
  async requestSelf(type: MessageTypeName, fields: Record<string, unknown>, body?: Uint8Array): Promise<Message> {
    const reply = await this.run({ type, fields, body: body ?? EMPTY }, this.selfId);
    return { type: reply.type, fields: reply.fields ?? {}, body: reply.body ?? EMPTY };
  }

  /** A frame from a link: answer a request (even when its handler throws), deliver a one-way message. */
  async dispatch(link: Link, msg: Message): Promise<void> {
    const id = msg.fields.id;
    const from = link.peer!.nodeId;
    if (typeof id !== "number") return link.peer!.probe ? undefined : this.deliver(msg, from);
    let reply: Reply;
    try {
      if (link.peer!.probe && !PROBE_TYPES.has(msg.type)) {
        throw new NodeError("E_HANDSHAKE", `${from} is a probe: it may send only ${[...PROBE_TYPES].join(" and ")}`);
      }
      reply = await this.run(msg, from);
    } catch (err) {
      reply = errorReply(err);
    }
    try {
      link.answer(id, reply);
    } catch (err) {
      link.answer(id, errorReply(err)); // e.g. the reply was too large to frame
    }
  }

  /** A one-way message: no answer; a failing handler is logged. */
  async deliver(msg: Message, from: string): Promise<void> {
    const handler = this.handlers.get(msg.type);
    if (!handler) return log.debug(`no handler for one-way ${msg.type} from ${from}: dropped`);
    try {
      await handler(msg, from);
    } catch (err) {
      log.warn(`handler for ${msg.type} from ${from} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** @throws NodeError E_PROTOCOL_TYPE when nothing handles the type, or what the handler throws */
  private async run(msg: Message, from: string): Promise<Reply> {
    const handler = this.handlers.get(msg.type);
    if (!handler) throw new NodeError("E_PROTOCOL_TYPE", `node ${this.selfId} has no handler for ${msg.type}`);
    return (await handler(msg, from)) ?? { type: "OK" };
  }
}
