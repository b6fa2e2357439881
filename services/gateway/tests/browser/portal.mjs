// The portal in a real browser: Debian's Chromium driven by playwright-core.
// Run by the Rust test tests/gateway/browser.rs against a gateway it started:
//
//   PORTAL_URL=http://127.0.0.1:PORT ADMIN_PASSWORD=... SCREENSHOT_DIR=DIR \
//   PLAYWRIGHT_DIR=DIR node portal.mjs
//
// Prints one line per check and exits non-zero at the first that fails.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('PORTAL_URL');
const adminPassword = env('ADMIN_PASSWORD');
const shots = env('SCREENSHOT_DIR');
// The version the Models page promotes to @champion.
const promote = env('PROMOTE_VERSION');
// playwright-core as infra.sh installs it: DIR/node_modules/playwright-core.
const require = createRequire(path.join(env('PLAYWRIGHT_DIR'), 'package.json'));
const { chromium } = require('playwright-core');
mkdirSync(shots, { recursive: true });

const check = (what, ok, detail = '') => {
  if (!ok) throw new Error(`${what}${detail ? `: ${detail}` : ''}`);
  console.log(`ok: ${what}`);
};

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run',
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  // Each page's server-side render time (the gateway's Server-Timing), kept
  // as a test artefact beside the screenshots.
  const timings = [];
  page.on('response', (response) => {
    if (response.request().resourceType() !== 'document') return;
    const timing = /render;dur=([0-9.]+)/.exec(response.headers()['server-timing'] ?? '');
    if (timing) timings.push({ url: new URL(response.url()).pathname + new URL(response.url()).search, status: response.status(), ms: Number(timing[1]) });
  });

  await page.goto(`${base}/`);
  check('an anonymous visit lands on the login form', new URL(page.url()).pathname === '/login', page.url());

  // Keyboard first: the skip link, then the username field.
  await page.keyboard.press('Tab');
  check('Tab reaches the skip link first', await page.evaluate(() => document.activeElement.className) === 'skip');
  await page.keyboard.press('Tab');
  check('then the username field', await page.evaluate(() => document.activeElement.id) === 'username');
  await page.keyboard.type('admin');
  await page.keyboard.press('Tab');
  await page.keyboard.type('wrong password!');
  await page.keyboard.press('Enter');
  await page.waitForLoadState();
  check('a wrong password is refused with a message',
    (await page.getByRole('alert').textContent()).includes('wrong username or password'));
  await page.screenshot({ path: path.join(shots, 'login-refused.png'), fullPage: true });

  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(adminPassword);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${base}/`);
  check('the admin reaches the overview', await page.getByRole('heading', { name: 'Served models' }).isVisible());
  const served = await page.locator('#served-table tbody tr').count();
  check('the overview lists the served model', served === 1, `${served} rows`);
  await page.screenshot({ path: path.join(shots, 'overview.png'), fullPage: true });

  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('Username').fill('vera');
  await page.getByLabel('Role', { exact: true }).selectOption('viewer');
  await page.getByLabel('Initial password (at least 12 characters)').fill('vera-browser-password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(`${base}/admin/users`);
  const accounts = page.getByRole('region', { name: 'Accounts' });
  check('the new account is listed', await accounts.getByRole('cell', { name: 'vera', exact: true }).isVisible());
  check('its creation is on the audit trail', await page.getByRole('cell', { name: 'user_created' }).first().isVisible());
  await page.screenshot({ path: path.join(shots, 'users.png'), fullPage: true });

  // KPIs: every chart draws, one series per region, on a non-empty canvas.
  await page.getByRole('link', { name: 'KPIs' }).click();
  await page.waitForURL(`${base}/kpis`);
  const regions = await page.locator('#kpi-totals tbody tr').count();
  check('the KPI table lists several regions', regions > 1, `${regions} regions`);
  const charts = async () => page.evaluate(() => window.portalCharts.map((c) => {
    const canvas = c.plot.ctx.canvas;
    const pixels = c.plot.ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++;
    return { id: c.id, series: c.series, painted };
  }));
  let drawn = await charts();
  check('six KPI charts draw', drawn.length === 6, JSON.stringify(drawn));
  check('every chart paints its canvas', drawn.every((c) => c.painted > 500), JSON.stringify(drawn));
  const lines = drawn.filter((c) => ['chart-active', 'chart-calls', 'chart-dropped', 'chart-data'].includes(c.id));
  check('the line charts have one series per region', lines.length === 4 && lines.every((c) => c.series === regions),
    JSON.stringify(lines));
  await page.screenshot({ path: path.join(shots, 'kpis.png'), fullPage: true });
  const firstRegion = await page.locator('#kpi-totals tbody tr th').first().textContent();
  await page.getByLabel(firstRegion, { exact: true }).check();
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/region=/);
  drawn = await charts();
  check('the region filter leaves one series per line chart',
    drawn.filter((c) => c.id === 'chart-calls').every((c) => c.series === 1), JSON.stringify(drawn));
  check('and one region in the table', await page.locator('#kpi-totals tbody tr').count() === 1);

  // SQL console: a query's rows as a table; DROP TABLE refused.
  await page.getByRole('link', { name: 'SQL' }).click();
  await page.getByLabel(/^Query/).fill('SELECT region, count(*) AS days FROM gold.kpi_daily GROUP BY region ORDER BY region');
  await page.getByLabel(/^Query/).press('Control+Enter');
  await page.waitForSelector('#result-table');
  const resultRows = await page.locator('#result-table tbody tr').count();
  check('the SQL console shows a row per region', resultRows === regions, `${resultRows} rows`);
  await page.screenshot({ path: path.join(shots, 'sql.png'), fullPage: true });
  await page.getByLabel(/^Query/).fill('DROP TABLE gold.kpi_daily');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.waitForLoadState();
  const refusal = await page.getByRole('alert').textContent();
  check('the SQL console refuses DROP TABLE', refusal.includes('only queries are accepted'), refusal);
  await page.screenshot({ path: path.join(shots, 'sql-refused.png'), fullPage: true });

  // Models: promote a version, through the confirmation.
  await page.getByRole('link', { name: 'Models' }).click();
  await page.getByRole('link', { name: 'churn', exact: true }).click();
  await page.waitForURL(`${base}/models/churn`);
  check('the Models page draws the alias timeline', await page.locator('svg.timeline rect.segment').count() >= 1);
  await page.screenshot({ path: path.join(shots, 'model.png'), fullPage: true });
  await page.getByRole('button', { name: `Make version ${promote} @champion` }).click();
  await page.waitForLoadState();
  check('the confirmation shows the metric difference', await page.locator('#metric-diff tbody tr').count() > 3);
  await page.screenshot({ path: path.join(shots, 'promote-confirm.png'), fullPage: true });
  await page.getByRole('button', { name: `Move @champion to version ${promote}` }).click();
  await page.waitForURL(`${base}/models/churn`);
  const aliases = await page.locator('#aliases').textContent();
  check('the promotion moves @champion', aliases.includes(`@champion → ${promote}`), aliases);
  await page.getByRole('link', { name: promote, exact: true }).click();
  check('the version page shows its lineage chain', (await page.locator('#lineage-chain li').count()) === 5);
  await page.screenshot({ path: path.join(shots, 'version.png'), fullPage: true });

  // Churn risk: the ranking, one subscriber's drivers, a what-if.
  await page.getByRole('link', { name: 'Churn risk' }).click();
  const ranked = await page.locator('#ranking tbody tr').count();
  check('the churn ranking lists subscribers', ranked > 0, `${ranked} rows`);
  await page.screenshot({ path: path.join(shots, 'churn.png'), fullPage: true });
  await page.locator('#ranking tbody tr a').first().click();
  await page.waitForSelector('#drivers');
  check('the drill-down shows the score\'s drivers', await page.locator('#drivers tbody tr').count() > 0);
  await page.screenshot({ path: path.join(shots, 'subscriber.png'), fullPage: true });
  await page.getByRole('link', { name: /What if/ }).click();
  await page.getByLabel('tickets_30d', { exact: true }).fill('15');
  await page.getByRole('button', { name: 'Score the what-if' }).click();
  await page.waitForSelector('#what-if-score');
  check('a what-if is scored', /^[01]\.\d{4}$/.test((await page.locator('#what-if-score').textContent()).trim()));
  await page.screenshot({ path: path.join(shots, 'what-if.png'), fullPage: true });

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(`${base}/login`);
  check('logging out returns to the login form', true);

  await page.getByLabel('Username').fill('vera');
  await page.getByLabel('Password').fill('vera-browser-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${base}/`);
  check('a viewer sees no Users link', await page.getByRole('link', { name: 'Users' }).count() === 0);
  const denied = await page.goto(`${base}/admin/users`);
  check('a viewer gets 403 on the users page', denied.status() === 403, `${denied.status()}`);
  await page.screenshot({ path: path.join(shots, 'forbidden.png'), fullPage: true });
  check('a viewer sees no SQL link', await page.getByRole('link', { name: 'SQL' }).count() === 0);
  const sqlDenied = await page.goto(`${base}/sql`);
  check('a viewer gets 403 on the SQL console', sqlDenied.status() === 403, `${sqlDenied.status()}`);
  const apiDenied = await page.request.post(`${base}/sql/api`, {
    data: { sql: 'SELECT 1' }, headers: { 'x-csrf-token': 'any' },
  });
  check('and on its API', apiDenied.status() === 403, `${apiDenied.status()}`);

  // Phone width: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [where, shot] of [['/', 'overview-phone'], ['/kpis', 'kpis-phone'], ['/models/churn', 'model-phone']]) {
    await page.goto(`${base}${where}`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(`${where} fits a 390 px screen`, width <= 390, `${width} px wide`);
    await page.screenshot({ path: path.join(shots, `${shot}.png`), fullPage: true });
  }
  writeFileSync(path.join(shots, 'server-timings.json'), JSON.stringify(timings, null, 2));
  const slowest = timings.reduce((a, b) => (b.ms > a.ms ? b : a), { ms: 0 });
  console.log(`timing: ${timings.length} pages rendered, slowest ${slowest.url} in ${slowest.ms} ms`);
} finally {
  await browser.close();
}
