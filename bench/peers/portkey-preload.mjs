/**
 * Preload for @portkey-ai/gateway 1.15.2 on Node 20 (`node --import ./portkey-preload.mjs ...`).
 *
 * Portkey appends headers to the upstream `fetch` Response of a stream; Node 20's fetch returns
 * Responses whose headers are immutable, so every streaming request fails with
 * "TypeError: immutable" (500). Rewrapping those responses in a new Response (same status, body
 * stream and headers, now mutable) is the smallest change that lets Portkey stream as it does on
 * the runtimes it targets. Non-streaming responses are left untouched.
 */
const originalFetch = globalThis.fetch;

globalThis.fetch = async function fetchWithMutableStreamHeaders(input, init) {
  const res = await originalFetch(input, init);
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return res;
  return new Response(res.body, {
    status: res.status,
    statusText: res.statusText,
    headers: new Headers(res.headers),
  });
};
