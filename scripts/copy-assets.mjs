// Copies the files tsc does not emit into dist/: the dashboard's page, script and style, and the
// pod-side guard, which `guardedPodStart` reads beside its compiled module to ship it in the pod env.
import { cpSync } from 'node:fs';
cpSync('src/gateway/dashboard/assets', 'dist/gateway/dashboard/assets', { recursive: true });
cpSync('src/guard/guard.py', 'dist/guard/guard.py');
