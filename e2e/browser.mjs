// LibreChat's own web client in Debian's headless Chromium, through the emulated API Gateway:
// log in, send a message, and record the answer growing on screen (DOM timestamps and
// screenshots). Prints one JSON line: {ok, detail, timeline, screenshots, requests}.
//
//   E2E_PASSWORD=... node e2e/browser.mjs --url URL --email EMAIL --out DIR [--tokens 30]
import { chromium } from 'playwright-core';
import { parseArgs } from 'node:util';
import path from 'node:path';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    email: { type: 'string' },
    out: { type: 'string' },
    tokens: { type: 'string', default: '30' },
  },
});
const expected = Number(opts.tokens);
const password = process.env.E2E_PASSWORD;
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const log = (...args) => console.error(new Date().toISOString(), ...args);

const result = { ok: false, detail: '', timeline: [], screenshots: [], requests: [] };
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/')) {
      result.requests.push(`${r.request().method()} ${u.pathname} -> ${r.status()}`);
    }
  });
  page.on('requestfailed', (r) => result.requests.push(`${r.method()} ${new URL(r.url()).pathname} failed: ${r.failure()?.errorText}`));
  const shot = async (name) => {
    const file = path.join(opts.out, `browser-${name}.png`);
    await page.screenshot({ path: file });
    result.screenshots.push(file);
  };

  log('open', opts.url);
  await page.goto(opts.url, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('input[name="email"], #email', { timeout: 60000 });
  await page.fill('input[name="email"], #email', opts.email);
  await page.fill('input[name="password"], #password', password);
  await shot('1-login');
  await page.click('button[type="submit"]');
  const input = page.locator('#prompt-textarea, [data-testid="text-input"]').first();
  await input.waitFor({ timeout: 60000 });
  log('logged in');

  // Count the model's tokens (t<number>) on screen at every DOM change, with a timestamp.
  await page.evaluate(() => {
    const timeline = [];
    window.__e2eTimeline = timeline;
    const count = () => (document.body.innerText.match(/\bt\d+\b/g) || []).length;
    let last = count();
    new MutationObserver(() => {
      const n = count();
      if (n !== last) {
        last = n;
        timeline.push({ t: Date.now(), tokens: n });
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  await input.fill('e2e chat: hello from the browser');
  await shot('2-typed');
  const sentAt = Date.now();
  await input.press('Enter');
  log('sent');

  let midShot = false;
  const deadline = Date.now() + 90000;
  let tokens = 0;
  while (Date.now() < deadline) {
    const timeline = await page.evaluate(() => window.__e2eTimeline);
    tokens = timeline.length ? timeline[timeline.length - 1].tokens : 0;
    if (!midShot && tokens > 0 && tokens < expected) {
      await shot('3-streaming');
      midShot = true;
    }
    if (tokens >= expected) break;
    await page.waitForTimeout(25);
  }
  // The conversation's title replaces "New Chat" in the sidebar once LibreChat generated it.
  const titleSeen = await page
    .getByText(/E2E title \d+/)
    .first()
    .waitFor({ timeout: 25000 })
    .then(() => Date.now() - sentAt, () => null);
  await shot('4-answered');
  const timeline = await page.evaluate(() => window.__e2eTimeline);
  result.timeline = timeline.map((e) => ({ ms: e.t - sentAt, tokens: e.tokens }));
  const growing = result.timeline.filter((e) => e.tokens > 0 && e.tokens < expected);
  const first = result.timeline.find((e) => e.tokens > 0);
  const full = result.timeline.find((e) => e.tokens >= expected);
  result.titleShownMs = titleSeen;
  result.ok = Boolean(first && full && growing.length >= 3 && titleSeen !== null);
  result.detail = first
    ? `first token on screen after ${first.ms} ms, ${growing.length} partial renders before all ` +
      `${expected} tokens ${full ? `at ${full.ms} ms` : 'never (saw ' + tokens + ')'}, ` +
      `title in the sidebar ${titleSeen !== null ? `at ${titleSeen} ms` : 'never (25 s)'}`
    : `no token on screen within 90 s (${result.requests.slice(-6).join('; ')})`;
} catch (err) {
  result.detail = `${err.name}: ${err.message.split('\n')[0]} (${result.requests.slice(-6).join('; ')})`;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
