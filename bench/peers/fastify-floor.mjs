/**
 * The Fastify floor: the Node floor (node-floor.mjs) on Fastify 5, to tell what the framework
 * itself costs from what our gateway's features cost. One POST route, the buffer body parser,
 * the same undici Pool, the answer back with `reply.send`; no hooks, auth, limits, validation,
 * logging or metrics. Non-streaming only (bench/ab.ts --fastify-floor runs it at c=1).
 *
 *   node bench/peers/fastify-floor.mjs <port> <upstream origin>
 */
import Fastify from 'fastify';
import { Pool } from 'undici';
const port = Number(process.argv[2]);
const pool = new Pool(process.argv[3], { connections: 4096 });
const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
const handler = async (req, reply) => {
  const body = req.body ?? null;
  const up = await pool.request({
    path: req.url,
    method: req.method,
    headers: {
      'content-type': 'application/json',
      'content-length': String(body?.length ?? 0),
      authorization: req.headers.authorization ?? '',
    },
    body,
  });
  const buf = Buffer.from(await up.body.arrayBuffer());
  return reply
    .code(up.statusCode)
    .header('content-type', String(up.headers['content-type'] ?? 'application/json'))
    .send(buf);
};
app.post('/v1/chat/completions', handler);
app.get('/health', handler);
await app.listen({ port, host: '127.0.0.1' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
