// Preloaded by bun test: quiet logs, and no test may reach beyond loopback.
process.env.EXO_LOG_LEVEL ??= "1";

const realFetch = globalThis.fetch;
const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;
globalThis.fetch = Object.assign((input: string | URL | Request, init?: RequestInit) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (!loopback.test(url.hostname)) throw new Error(`test tried to reach ${url.host}: tests stay on loopback`);
  return realFetch(input, init);
}, realFetch);
