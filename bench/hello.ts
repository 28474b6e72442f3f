/**
 * A Fastify hello-world: the ceiling for cache hits on this box (workload 5). A cache hit in our
 * gateway does everything a hello-world does plus auth, limits, validation, the cache lookup and
 * logging, so hit throughput ÷ hello-world throughput is the cost of those.
 *
 *   node --import tsx bench/hello.ts --port 8080
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const app = Fastify({ logger: false });
  app.get('/', async () => ({ hello: 'world' }));
  app.post('/', async () => ({ hello: 'world' }));
  await app.listen({ host: '127.0.0.1', port: Number(values.port) });
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => void app.close().then(() => process.exit(0)));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
