import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { CONSOLE_CSP } from '../../src/console/console-static';
import { eventually } from '../support/eventually';
import { recordSecret } from '../support/log-capture';
import { createClaim, deviceToken, stationToken } from '../support/station';
import { bearer, ManualClock, startTestApp, TestApp } from '../support/test-app';

/**
 * The ops console (docs/console.md) in a real headless Chromium (Debian's `chromium` package) against the real
 * service on a port (SQLite): sign in, search and revoke, a campaign advancing while the page polls, and an auditor who
 * sees no revoke button. FLEET_PKI_CONSOLE_SCREENSHOTS=1 also writes docs/console/*.png.
 */
const CHROMIUM = process.env.FLEET_PKI_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = fs.existsSync(CHROMIUM) ? false : `console suite skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set FLEET_PKI_CHROMIUM)`;
const SCREENSHOTS = process.env.FLEET_PKI_CONSOLE_SCREENSHOTS === '1';
const SCREENSHOT_DIR = path.resolve(__dirname, '..', '..', '..', 'docs', 'console');
const DAY = 86_400_000;
const TIMEOUT = 20_000;

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('ops console in headless Chromium', { skip: SKIP }, () => {
  const clock = new ManualClock();
  let t: TestApp;
  let browser: Browser;
  let auditorKey: string;
  let target: Body;
  const devices: { cert: Body; key: KeyObject }[] = [];
  let campaign: Body;
  const pageErrors: string[] = [];

  async function api(method: 'get' | 'post', route: string, body?: object, key = t.adminKey): Promise<Body> {
    const req = t.http()[method](route).set(bearer(key));
    const res = await (body ? req.send(body) : req);
    assert.ok(res.status < 300, `${method} ${route}: ${res.status} ${res.text}`);
    return res.body;
  }

  async function issue(authorityId: string, thingName: string, validityDays: number): Promise<{ cert: Body; key: KeyObject }> {
    const { csrPem, privateKey } = deviceKeyAndCsr(thingName);
    return { cert: await api('post', '/v1/certificates', { authorityId, csr: csrPem, profile: 'device', thingName, validityDays }), key: privateKey };
  }

  async function openPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (message) => {
      if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) pageErrors.push(message.text());
    });
    return page;
  }

  async function signIn(page: Page, key: string): Promise<void> {
    await page.goto(`${t.baseUrl}/console/`);
    await page.getByTestId('api-key').fill(key);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('whoami').waitFor();
  }

  /** The search has answered: the list shows the one match (before, it shows every certificate). */
  async function onlyOneRow(page: Page): Promise<void> {
    await eventually('the search shows one row', async () => (await page.getByTestId('certificate-row').count()) === 1, TIMEOUT, 50);
  }

  /** Polls from the test, not in the page: the page's CSP forbids the eval a string predicate would need. */
  async function textBecomes(locator: Locator, text: string): Promise<void> {
    await eventually(`the text is "${text}"`, async () => (await locator.textContent()) === text, TIMEOUT, 50);
  }

  async function shoot(page: Page, name: string): Promise<void> {
    if (!SCREENSHOTS) return;
    fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
  }

  before(async () => {
    // Devices (and their CAs) are issued three weeks back: they are then in their renewal window (the last third
    // of 30 days) at the real time again, when the page watches the campaign.
    clock.advance(-21 * DAY);
    t = await startTestApp('sqlite', { clock });
    const root = await api('post', '/v1/authorities', { name: 'Console Root', type: 'root', subject: { commonName: 'Console Root' } });
    const issuing = await api('post', '/v1/authorities', { name: 'Console Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Console Devices CA' } });
    const claimsCa = await api('post', '/v1/authorities', { name: 'Console Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Console Claims CA' } });
    for (const name of ['console-renew-1', 'console-renew-2', 'console-renew-3']) devices.push(await issue(issuing.id, name, 30));
    target = (await issue(issuing.id, 'console-target', 365)).cert;
    await issue(issuing.id, 'console-long-lived', 365);
    clock.advance(21 * DAY);
    const line3 = await createClaim(t, { claimAuthorityId: claimsCa.id, deviceAuthorityId: issuing.id, name: 'Line 3 batch 12', factory: 'Acme Shenzhen', line: 'line-3', maxDevices: 500 });
    // Two devices provisioned on line 3: the claims page shows the quota in use.
    for (const serial of ['SN0001', 'SN0002']) {
      const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, line3.station)}`).send({ deviceSerial: serial, csr: deviceKeyAndCsr(serial).csrPem });
      assert.equal(res.status, 201, res.text);
    }
    await createClaim(t, { claimAuthorityId: claimsCa.id, deviceAuthorityId: issuing.id, name: 'Line 4 batch 2', factory: 'Acme Shenzhen', line: 'line-4', maxDevices: 200 });
    campaign = await api('post', '/v1/rotations', {
      selector: { certificateIds: devices.map((d) => d.cert.id) },
      reason: 'console demo: issuing CA retires',
      deadline: new Date(clock.now().getTime() + 14 * DAY).toISOString(),
      onDeadline: 'report',
    });
    const auditor = await api('post', '/v1/api-keys', { name: 'console auditor', role: 'auditor' });
    auditorKey = auditor.key;
    recordSecret('auditor API key', auditorKey);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
  });

  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it('serves the page under a Content-Security-Policy without inline scripts, with every asset from the service', async () => {
    const page = await fetch(`${t.baseUrl}/console/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-security-policy'), CONSOLE_CSP);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.ok(scripts.length >= 1);
    for (const [, attributes, content] of scripts) {
      assert.equal(content.trim(), '', 'no inline script');
      assert.match(attributes, /src="\/console\/assets\/[^"]+\.js"/, 'scripts come from the service itself');
    }
    assert.doesNotMatch(html, /https?:\/\//, 'no third-party origin');
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1];
    const script = await fetch(`${t.baseUrl}${asset}`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('cache-control') ?? '', /immutable/);
    assert.equal((await fetch(`${t.baseUrl}/console`, { redirect: 'manual' })).status < 400, true);
  });

  it('signs in with an API key kept in sessionStorage only (never localStorage, a cookie or the URL) and shows the fleet', async () => {
    const page = await openPage();
    await signIn(page, t.adminKey);
    assert.match(await page.getByTestId('whoami').textContent() ?? '', /admin/);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const stored = await page.evaluate(() => { const w = globalThis as any; return { session: Object.values(w.sessionStorage), local: w.localStorage.length, cookie: w.document.cookie }; });
    assert.deepEqual(stored, { session: [t.adminKey], local: 0, cookie: '' });
    assert.equal((await page.context().cookies()).length, 0);
    assert.ok(!page.url().includes(t.adminKey));
    await page.getByTestId('tile-total').waitFor();
    // 3 rotation members + target + long-lived + 2 claim certificates + 2 provisioned devices; within 30 days: the
    // 3 members (9 days left) and the claim certificates (7 days).
    assert.equal((await page.getByTestId('tile-total').locator('.tile-value').textContent())?.trim(), '9');
    assert.equal((await page.getByTestId('tile-expiring-30').locator('.tile-value').textContent())?.trim(), '5');
    assert.equal((await page.getByTestId('tile-expiring-90').locator('.tile-value').textContent())?.trim(), '5');
    await page.getByTestId('expiry-chart').waitFor();
    // The dead-jobs tile shows the count when GET /v1/jobs?state=dead answers, and is hidden where it is a 404.
    const jobs = await fetch(`${t.baseUrl}/v1/jobs?state=dead&limit=500`, { headers: bearer(t.adminKey) });
    if (jobs.status === 404) assert.equal(await page.getByTestId('tile-dead-jobs').count(), 0);
    else assert.equal((await page.getByTestId('tile-dead-jobs').locator('.tile-value').textContent())?.trim(), String(((await jobs.json()) as Body).items.length));
    await shoot(page, 'overview');
    await page.getByTestId('nav-authorities').click();
    await page.getByText('Console Claims', { exact: true }).waitFor();
    assert.equal(await page.getByTestId('ca-node').count(), 3);
    await shoot(page, 'authorities');
    await page.getByTestId('nav-claims').click();
    const line3 = page.getByTestId('claim-lines').locator('tr', { hasText: 'line-3' });
    await line3.waitFor();
    assert.match((await line3.textContent()) ?? '', /2 \/ 500/);
    await shoot(page, 'claims');
    await page.context().close();
  });

  it('searches a certificate and revokes it after a confirmation with a reason; the row and the API agree', async () => {
    const page = await openPage();
    await signIn(page, t.adminKey);
    await page.getByTestId('nav-certificates').click();
    await page.getByTestId('search-thingName').fill('console-target');
    await page.getByTestId('search-submit').click();
    const row = page.locator(`[data-testid="certificate-row"][data-id="${target.id}"]`);
    await onlyOneRow(page);
    await row.click();
    await page.getByTestId('revoke-button').click();
    await page.getByTestId('revoke-dialog').waitFor();
    await page.getByTestId('revoke-reason').selectOption('keyCompromise');
    await shoot(page, 'revoke');
    await page.getByTestId('revoke-confirm').click();
    await row.locator('[data-status="revoked"]').waitFor();
    await page.getByTestId('revoke-dialog').waitFor({ state: 'detached' });
    const after = await api('get', `/v1/certificates/${target.id}`);
    assert.equal(after.status, 'revoked');
    assert.equal(after.revocationReason, 'keyCompromise');
    await page.getByTestId('certificate-detail').locator('[data-status="revoked"]').waitFor();
    assert.equal(await page.getByTestId('revoke-button').count(), 0, 'no revoke button on a revoked certificate');
    await page.context().close();
  });

  it('shows a rotation campaign advance while devices renew through the API', async () => {
    const page = await openPage();
    await signIn(page, t.adminKey);
    await page.getByTestId('nav-rotations').click();
    const renewed = page.locator(`[data-testid="campaign"][data-id="${campaign.id}"] [data-testid="campaign-renewed"]`);
    await textBecomes(renewed, '0 / 3 renewed');
    for (const [i, device] of devices.slice(0, 2).entries()) {
      const token = deviceToken(t, device.cert.certificatePem, device.key, { iat: Math.floor(clock.now().getTime() / 1000), exp: Math.floor(clock.now().getTime() / 1000) + 120 });
      const res = await t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${token}`).send({ csr: deviceKeyAndCsr(device.cert.thingName).csrPem });
      assert.equal(res.status, 201, res.text);
      // The page was not reloaded: its polling shows the progress.
      await textBecomes(renewed, `${i + 1} / 3 renewed`);
    }
    await shoot(page, 'rotation');
    await page.context().close();
  });

  it('shows an auditor no revoke button (the API refuses the auditor anyway), and the audit chain status', async () => {
    const me = await api('get', '/v1/me', undefined, auditorKey);
    assert.deepEqual(Object.keys(me).sort(), ['id', 'name', 'permissions', 'prefix', 'role']);
    assert.equal(me.role, 'auditor');
    assert.ok(me.permissions.includes('audit:read') && !me.permissions.includes('certificates:revoke'));
    const page = await openPage();
    await signIn(page, auditorKey);
    assert.match(await page.getByTestId('whoami').textContent() ?? '', /auditor/);
    await page.getByTestId('nav-certificates').click();
    await page.getByTestId('search-thingName').fill('console-long-lived');
    await page.getByTestId('search-submit').click();
    await onlyOneRow(page);
    const row = page.getByTestId('certificate-row');
    await row.locator('[data-status="active"]').waitFor();
    await row.click();
    await page.getByTestId('certificate-detail').waitFor();
    assert.equal(await page.getByTestId('revoke-button').count(), 0);
    const id = await row.getAttribute('data-id');
    const refused = await t.http().post(`/v1/certificates/${id}/revoke`).set(bearer(auditorKey)).send({ reason: 'keyCompromise' });
    assert.equal(refused.status, 403);
    await page.getByTestId('nav-audit').click();
    await page.getByTestId('audit-chain').getByText(/Chain intact/).waitFor();
    await page.getByTestId('audit-events').getByText('certificate.revoked').first().waitFor();
    await shoot(page, 'audit');
    await page.context().close();
  });

  it('ran without a script error or a Content-Security-Policy violation in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
