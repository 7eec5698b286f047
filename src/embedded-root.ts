// Whether this code runs from sources or inside the compiled executable, decided in one place: Bun puts a
// compiled bundle's modules (and the files build.ts embeds) under a virtual root, /$bunfs/root (B:\~BUN\root on Windows).

/** The root of Bun's embedded file system when `moduleDir` is inside a compiled executable, else undefined. */
export function embeddedRoot(moduleDir: string = import.meta.dir): string | undefined {
  if (moduleDir.startsWith("/$bunfs/")) return "/$bunfs/root";
  if (moduleDir.startsWith("B:\\~BUN\\")) return "B:\\~BUN\\root";
  return undefined;
}

/** `name` inside the embedded root, with the root's own separator. */
export function embeddedPath(root: string, name: string): string {
  return `${root}${root.startsWith("/") ? "/" : "\\"}${name}`;
}
