// dashboard.js is the page's browser script, imported as text (see assets.ts), never as a module.
declare const text: string;
export default text;
