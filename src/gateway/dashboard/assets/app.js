// The dashboard: polls the gateway's own JSON stats with the key from sessionStorage and renders
// them. Everything user-controlled is written with textContent (never innerHTML): a prompt or a
// user agent containing <script> shows as text. No external resources: the page's CSP forbids them.
'use strict';
(function () {
  const KEY = 'runpod-llm-gateway-key';
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let timer = null;

  function setText(id, value) {
    $(id).textContent = value === null || value === undefined ? '–' : String(value);
  }
  function fmtMs(v) {
    return v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : Math.round(v).toString();
  }
  function fmtPct(v) {
    return v === null || v === undefined ? '–' : (v * 100).toFixed(1) + ' %';
  }
  function fmtBytes(v) {
    if (v === null || v === undefined) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (v >= 1024 && i < 3) {
      v /= 1024;
      i++;
    }
    return v.toFixed(i ? 1 : 0) + ' ' + u[i];
  }
  function fmtDuration(s) {
    if (s === null || s === undefined) return '–';
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600),
      m = Math.floor((s % 3600) / 60);
    return h ? h + 'h ' + m + 'm' : m ? m + 'm ' + (s % 60) + 's' : s + 's';
  }

  function showLogin(message) {
    if (timer) clearInterval(timer);
    timer = null;
    $('main').hidden = true;
    $('forget').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
  }

  function start() {
    $('login').hidden = true;
    $('main').hidden = false;
    $('forget').hidden = false;
    poll();
    timer = setInterval(poll, POLL_MS);
  }

  async function poll() {
    const key = sessionStorage.getItem(KEY);
    if (!key) return showLogin('');
    try {
      const [statsRes, healthRes] = await Promise.all([
        fetch('/metrics?format=json', { headers: { authorization: 'Bearer ' + key }, cache: 'no-store' }),
        fetch('/health', { cache: 'no-store' }),
      ]);
      if (statsRes.status === 401) {
        sessionStorage.removeItem(KEY);
        return showLogin('That key was refused.');
      }
      if (!statsRes.ok) throw new Error('HTTP ' + statsRes.status);
      render(await statsRes.json(), healthRes.ok ? await healthRes.json() : null);
    } catch {
      const badge = $('health');
      badge.textContent = 'unreachable';
      badge.className = 'badge bad';
    }
  }

  function render(s, health) {
    setText('requests_total', s.requests_total);
    // The newest complete 10-second bucket (the current one is still filling).
    const last = s.series.length > 1 ? s.series[s.series.length - 2] : s.series[0];
    setText('rps', last ? (last.requests / 10).toFixed(1) : null);
    setText('p50', fmtMs(s.latency_ms.p50));
    setText('p95', fmtMs(s.latency_ms.p95));
    setText('p99', fmtMs(s.latency_ms.p99));
    setText('ttft', fmtMs(s.ttft_ms.p50));
    setText('cache_hit_rate', fmtPct(s.cache_hit_rate));
    setText('cache_entries', s.cache_entries);
    setText('cache_bytes', fmtBytes(s.cache_size_bytes));
    setText('errors_total', s.errors_total);
    setText('error_rate', fmtPct(s.error_rate));
    setText('rate_limited_total', s.rate_limited_total);
    setText('auth_failures_total', s.auth_failures_total);
    setText('tokens_in', s.tokens_in);
    setText('tokens_out', s.tokens_out);
    setText('uptime', fmtDuration(s.uptime_s));
    const badge = $('health');
    const status = health ? health.status : 'unknown';
    badge.textContent = 'gateway ' + status;
    badge.className = 'badge ' + (status === 'ok' ? 'ok' : 'bad');
    renderPod(s.pod);
    chart('chart-rps', [s.series.map((p) => p.requests / 10)]);
    chart('chart-latency', [
      s.series.map((p) => p.latency_p50_ms),
      s.series.map((p) => p.latency_p95_ms),
      s.series.map((p) => p.latency_p99_ms),
    ]);
    chart('chart-ttft', [s.series.map((p) => p.ttft_p50_ms)]);
    renderEvents(s.security_events);
  }

  function renderPod(pod) {
    const dl = $('pod');
    dl.replaceChildren();
    const rows = pod
      ? [
          ['status', pod.status],
          ['pod', pod.pod_id],
          ['model', pod.model],
          ['GPU', pod.gpu],
          ['price', pod.cost_per_hr === null ? null : '$' + pod.cost_per_hr.toFixed(2) + '/h'],
          ['cost so far', pod.cost_so_far_usd === null ? null : '$' + pod.cost_so_far_usd.toFixed(2)],
          ['time left', fmtDuration(pod.time_left_s)],
          ['idle', pod.idle_min === null ? null : pod.idle_min + ' min'],
        ]
      : [['state', 'no pod managed here (static upstream, or no `runpod-llm up` yet)']];
    for (const [name, value] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = value === null || value === undefined ? '–' : String(value);
      dl.append(dt, dd);
    }
  }

  function renderEvents(events) {
    const body = $('events');
    body.replaceChildren();
    for (const e of events) {
      const tr = document.createElement('tr');
      for (const value of [e.at.slice(11, 19), e.event, e.status, e.ip, e.path, e.userAgent]) {
        const td = document.createElement('td');
        td.textContent = value === undefined || value === null ? '' : String(value);
        tr.append(td);
      }
      body.append(tr);
    }
  }

  function chart(id, lines) {
    const svg = $(id);
    svg.replaceChildren();
    const values = lines.flat().filter((v) => typeof v === 'number');
    const max = values.length ? Math.max(...values, 1e-9) : 1;
    lines.forEach((line, i) => {
      const n = line.length;
      const points = [];
      line.forEach((v, j) => {
        if (typeof v === 'number')
          points.push(((n > 1 ? j / (n - 1) : 1) * 300).toFixed(1) + ',' + (78 - (v / max) * 74).toFixed(1));
      });
      if (!points.length) return;
      // A single bucket is a level, not a dot: draw it across.
      if (points.length === 1) points.unshift('0,' + points[0].split(',')[1]);
      const poly = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
      poly.setAttribute('points', points.join(' '));
      poly.setAttribute('class', 's' + i);
      svg.append(poly);
    });
  }

  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('key').value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $('key').value = '';
    start();
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    showLogin('Key forgotten.');
  });
  if (sessionStorage.getItem(KEY)) start();
  else showLogin('');
})();
