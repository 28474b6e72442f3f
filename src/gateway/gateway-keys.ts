import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { readTextIfExists, writePrivateFile } from '../shared/secret-file.js';

/*
 * Which gateway keys are in force. Explicit keys (GATEWAY_API_KEYS or the config) win; on
 * loopback without keys, a key is generated once, stored 0600 under RUNPOD_LLM_HOME and reused,
 * so the IDE configuration keeps working across restarts. `auth: "none"` must be explicit.
 */

/** The gateway keys in force and where they came from. */
export interface ResolvedKeys {
  keys: string[];
  source: 'configured' | 'file' | 'generated' | 'none';
  file: string | undefined;
}

export function gatewayKeyFile(home: string): string {
  return join(home, 'gateway.key');
}

export function resolveGatewayKeys(config: Config): ResolvedKeys {
  if (config.auth === 'none') return { keys: [], source: 'none', file: undefined };
  if (config.api_keys.length > 0)
    return { keys: [...config.api_keys], source: 'configured', file: undefined };
  const file = gatewayKeyFile(config.home ?? '.runpod-llm');
  const stored = readTextIfExists(file)
    ?.split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length >= 16);
  if (stored !== undefined && stored.length > 0) return { keys: stored, source: 'file', file };
  const key = `rlm_${randomBytes(24).toString('base64url')}`;
  writePrivateFile(file, `${key}\n`);
  return { keys: [key], source: 'generated', file };
}
