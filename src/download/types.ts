// The model-store contract exo's own HTTP routes are served from (/modelpool, /download,
// /v1/download/progress, DELETE /models/{id}); model-store.ts implements it over the Hugging Face cache.

/** Download state of the models on this node, in exo's /modelpool and progress shapes. */
export interface ModelStore {
  /** exo's GET /modelpool body. */
  modelPool(): Promise<unknown>;
  /** exo's GET /v1/download/progress body. */
  downloadProgress(): unknown;
  /**
   * Start downloading a model on this node (POST /download): resolves once the model is known, on the hub and
   * runnable here; the files follow in the background. Throws E_MODEL_UNKNOWN, E_DOWNLOAD_NOT_FOUND, E_MODEL_UNSUPPORTED.
   */
  startDownload(modelId: string): Promise<void>;
  /** Delete a model's files on this node (DELETE /models/{id}). Throws E_MODEL_UNKNOWN. */
  deleteModel(modelId: string): Promise<{ deleted: boolean }>;
}
