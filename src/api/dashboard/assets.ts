// The dashboard's files, imported as text so they are part of the bundle (and so of the executable): no files
// on disk at run time, nothing from a CDN. The page inlines its script, so GET / is one self-contained response.
import script from "./dashboard.js" with { type: "text" };
import page from "./index.html" with { type: "text" };

// Bun's typings describe .html imports as HTML bundles; with `type: "text"` they are the file's text.
const html = page as unknown as string;

/** The page with its script inlined. */
export const DASHBOARD_HTML: string = html.replace("/*DASHBOARD_SCRIPT*/", () => script);
