/**
 * Optional content policy for `<script>` tags and `javascript:` URLs in prompts.
 *
 * Default `off`: prompts from an IDE are code, and code legitimately contains `<script>` and
 * `javascript:`; stripping would silently corrupt the user's question (the original Python tool stripped, which
 * broke web-development prompts). The model's output is never rendered by the gateway. `reject`
 * and `strip` exist for deployments that feed prompts into HTML. See SECURITY.md.
 */
export type ContentPolicy = 'off' | 'strip' | 'reject';

const SCRIPT_BLOCK = /<script\b[^>]*>[\s\S]*?<\/script\s*>/gi;
const SCRIPT_TAG = /<\/?script\b[^>]*>/gi;
const JS_URL = /javascript\s*:/gi;
const DETECT = /<\/?script\b|javascript\s*:/i;

export function violates(text: string): boolean {
  return DETECT.test(text);
}

export function strip(text: string): string {
  return text.replace(SCRIPT_BLOCK, '').replace(SCRIPT_TAG, '').replace(JS_URL, '');
}
