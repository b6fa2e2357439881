// The portal in a real browser: Debian's Chromium driven by playwright-core.
// Run by the Rust test tests/gateway/browser.rs against a gateway it started:
//
//   PORTAL_URL=http://127.0.0.1:PORT ADMIN_PASSWORD=... SCREENSHOT_DIR=DIR \
//   PLAYWRIGHT_DIR=DIR node portal.mjs
//
// Prints one line per check and exits non-zero at the first that fails.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('PORTAL_URL');
const adminPassword = env('ADMIN_PASSWORD');
const shots = env('SCREENSHOT_DIR');
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
  const served = await page.locator('table tbody tr').count();
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

  // Phone width: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/`);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check('the overview fits a 390 px screen', width <= 390, `${width} px wide`);
  await page.screenshot({ path: path.join(shots, 'overview-phone.png'), fullPage: true });
} finally {
  await browser.close();
}
