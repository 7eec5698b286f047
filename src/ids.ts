// The ids that must not be mixed up, as branded strings (STYLE §3): every NodeId is a string, but a string is
// a NodeId only once a parser of untrusted input or the code that mints it says so. The brand exists only in
// the types; on the wire and in JSON an id is the plain string it always was.

declare const BRAND: unique symbol;
type Branded<Name extends string> = string & { readonly [BRAND]: Name };

/** A node's name in the cluster (peer file entry, HELLO `node_id`, plan stages). */
export type NodeId = Branded<"NodeId">;
/** One generation across the cluster, minted by its coordinator. */
export type RequestId = Branded<"RequestId">;
/** A model as the catalog, the API and plans name it (catalog id, Hugging Face repo id or local directory). */
export type ModelId = Branded<"ModelId">;

/** Marks a checked string as a node id. */
export const asNodeId = (id: string): NodeId => id as NodeId;
/** Marks a checked or freshly made string as a request id. */
export const asRequestId = (id: string): RequestId => id as RequestId;
/** Marks a checked string as a model id. */
export const asModelId = (id: string): ModelId => id as ModelId;
