/**
 * The Node floor: the least a Node proxy can do, for the profile stage to set our gateway
 * against. `node:http` in, one undici Pool out, bytes back; no framework, no auth, no limits, no
 * validation, no logging, no metrics. What our gateway costs above this is the price of its
 * features and of Fastify; what this costs above nginx is the price of Node itself.
 *
 *   node bench/peers/node-floor.mjs <port> <upstream origin>
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const port = Number(process.argv[2]);
const upstream = process.argv[3];
// Wide enough never to queue a stream (the benchmark holds up to 1,024).
const pool = new Pool(upstream, { connections: 4096 });

createServer({ noDelay: true }, (req, res) => {
  const parts = [];
  req.on('data', (chunk) => parts.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(body.length),
      authorization: req.headers.authorization ?? '',
    };
    pool
      .request({
        path: req.url ?? '/',
        method: req.method === 'GET' ? 'GET' : 'POST',
        headers,
        body: req.method === 'GET' ? null : body,
      })
      .then(
        (up) => {
          const type = String(up.headers['content-type'] ?? 'application/octet-stream');
          if (type.startsWith('text/event-stream')) {
            res.writeHead(up.statusCode, { 'content-type': type });
            up.body.on('data', (chunk) => {
              if (!res.write(chunk)) {
                up.body.pause();
                res.once('drain', () => up.body.resume());
              }
            });
            up.body.on('end', () => res.end());
            res.on('close', () => up.body.destroy());
            return;
          }
          return up.body.arrayBuffer().then((buf) => {
            const out = Buffer.from(buf);
            res.writeHead(up.statusCode, { 'content-type': type, 'content-length': out.length }).end(out);
          });
        },
        () => res.writeHead(502).end(),
      );
  });
}).listen(port, '127.0.0.1');

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
