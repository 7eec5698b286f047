// The node refuses models by architecture before any download (src/catalog/architectures.ts); that list must
// name exactly the architectures the MLX registry can build.
import { expect, test } from "bun:test";
import { RUNNABLE_ARCHITECTURES } from "../../src/catalog/architectures.ts";
import { SUPPORTED_MODEL_TYPES } from "../../src/models/index.ts";

test("the node's list of runnable architectures equals the model registry", () => {
  expect([...RUNNABLE_ARCHITECTURES].sort()).toEqual([...SUPPORTED_MODEL_TYPES].sort());
});
