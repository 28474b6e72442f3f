// Copies the files tsc does not emit (the dashboard's page, script and style) into dist/.
import { cpSync } from 'node:fs';
cpSync('src/gateway/dashboard/assets', 'dist/gateway/dashboard/assets', { recursive: true });
