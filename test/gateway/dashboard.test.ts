import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { chatBody, GATEWAY_KEY, startTestGateway, type TestGateway } from '../helpers/gateway.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('dashboard in a real browser (Chromium)', () => {
  let gw: TestGateway;
  let browser: BrowserContext;
  let page: Page;
  let profile: string;
  const consoleErrors: string[] = [];
  const offLoopback: string[] = [];
  const dialogs: string[] = [];

  before(async () => {
    gw = await startTestGateway({ config: { rate_limit_requests: 1000 }, probe: true });
    await gw.probe.runOnce();
    profile = mkdtempSync(join(tmpdir(), 'dash-'));
    // A fresh profile directory per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(join(profile, 'chrome'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(err.message));
    page.on('request', (req) => {
      if (new URL(req.url()).hostname !== '127.0.0.1') offLoopback.push(req.url());
    });
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  it('asks for the key, keeps it out of the URL, then shows the measured numbers', async () => {
    await page.goto(`${gw.url}/dashboard`);
    await page.locator('#login').waitFor({ state: 'visible' });
    // Known traffic: 4 chats (1 miss + 2 hits of a cached one, 1 sampled), 1 stream, 1 invalid with a hostile user agent.
    const cached = chatBody('dashboard', { temperature: 0 });
    for (let i = 0; i < 3; i++)
      await (await gw.api('/v1/chat/completions', { method: 'POST', json: cached })).arrayBuffer();
    await (await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('sampled') })).arrayBuffer();
    await (
      await gw.api('/v1/chat/completions', { method: 'POST', json: chatBody('streamed', { stream: true }) })
    ).text();
    await (
      await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: { model: 'm' },
        headers: { 'user-agent': '<script>alert("xss")</script><img src=x onerror=alert(2)>' },
      })
    ).arrayBuffer();

    await page.fill('#key', GATEWAY_KEY);
    await page.click('#login button[type=submit]');
    await page
      .waitForFunction(
        "document.querySelector('[data-testid=requests_total]')?.textContent === '6'",
        undefined,
        { timeout: 10_000 },
      )
      .catch(async (err: Error) => {
        throw new Error(
          `${err.message}; the page shows requests_total=${await page.locator('[data-testid=requests_total]').textContent()}`,
        );
      });
    assert.ok(!page.url().includes(GATEWAY_KEY), 'the key is never in the URL');
    assert.equal(await page.evaluate("sessionStorage.getItem('runpod-llm-gateway-key')"), GATEWAY_KEY);

    const json = (await (await gw.api('/metrics?format=json')).json()) as Record<string, unknown> & {
      latency_ms: { p50: number };
    };
    const shown = async (id: string) => (await page.locator(`[data-testid=${id}]`).textContent())?.trim();
    assert.equal(await shown('requests_total'), String(json.requests_total));
    assert.equal(await shown('cache_hit_rate'), `${((json.cache_hit_rate as number) * 100).toFixed(1)} %`);
    assert.equal(await shown('cache_hit_rate'), '66.7 %');
    assert.equal(await shown('errors_total'), String(json.errors_total));
    assert.equal(await shown('tokens_out'), String(json.tokens_out));
    assert.match((await shown('health')) ?? '', /gateway ok/);
    assert.notEqual(await shown('p50'), '–');
    assert.notEqual(await shown('ttft'), '–');
  });

  it('renders hostile text as text: no script runs, no element is injected', async () => {
    const events = page.locator('[data-testid=events]');
    await events.locator('tr').first().waitFor();
    const text = (await events.textContent()) ?? '';
    assert.ok(text.includes('<script>alert("xss")</script>'), 'shown literally');
    assert.equal(await page.locator('[data-testid=events] script, [data-testid=events] img').count(), 0);
    assert.deepEqual(dialogs, []);
  });

  it('draws the charts, leaves no console errors, talks only to loopback, and is screenshotted', async () => {
    await page.waitForFunction("document.querySelectorAll('#chart-rps polyline').length === 1");
    assert.equal(await page.locator('#chart-latency polyline').count(), 3);
    const shot = join(profile, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000);
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(offLoopback, []);
  });

  it('serves the page under a strict CSP and nothing outside the three assets', async () => {
    const res = await fetch(`${gw.url}/dashboard`);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    for (const path of [
      '/dashboard/../package.json',
      '/dashboard/..%2f..%2fpackage.json',
      '/dashboard/assets/app.js',
      '/dashboard/%2e%2e/%2e%2e/etc/passwd',
    ]) {
      const r = await fetch(`${gw.url}${path}`);
      const body = await r.text();
      assert.ok(r.status === 404 || r.status === 400, `${path} → ${r.status}`);
      assert.match(body, /"error":\{/);
    }
  });
});
