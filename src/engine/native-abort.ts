// Test-only: crash this process the way a real MLX failure does, from inside native code.
// A float16 matmul has no CPU kernel, so eval throws in C++ and std::terminate aborts (mlx-notes §1).
import { core as mx } from "@frost-beta/mlx";

/** Never returns: the process dies with SIGABRT. */
export function nativeAbort(): never {
  const a = mx.ones([16, 16], mx.float16);
  mx.eval(mx.matmul(a, a));
  // Backends with a float16 matmul (Metal) survive the eval; abort() is native too.
  process.abort();
}
