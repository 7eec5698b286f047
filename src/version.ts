// The build version. build.ts replaces EXO_BUILD_VERSION with --define; from sources it is the package version.
import pkg from "../package.json" with { type: "json" };

declare const EXO_BUILD_VERSION: string | undefined;

export const VERSION: string = typeof EXO_BUILD_VERSION === "string" ? EXO_BUILD_VERSION : pkg.version;
/** Wire protocol version carried in every frame header (byte 3 of the magic). */
export const PROTOCOL_VERSION = 1;
