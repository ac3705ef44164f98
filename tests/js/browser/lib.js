'use strict';
// Helpers for the notebook page's browser tests (notebook.test.js). The gateway under test is
// started by tests/gateway_it/run_js.py --dir browser, which passes SANDCELL_GW_URL,
// SANDCELL_GW_TOKEN and SANDCELL_SHOTS_DIR. Chromium comes from the system (/usr/bin/chromium,
// or SANDCELL_CHROMIUM): these tests never download a browser.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BASE_URL = process.env.SANDCELL_GW_URL;
const TOKEN = process.env.SANDCELL_GW_TOKEN;
if (!BASE_URL || TOKEN === undefined) {
  throw new Error('SANDCELL_GW_URL and SANDCELL_GW_TOKEN are not set: run these tests through ' +
                  'tests/gateway_it/run_js.py --dir browser, which starts the gateway under test');
}
const base = new URL(BASE_URL);
if (base.hostname !== '127.0.0.1' && base.hostname !== 'localhost' && base.hostname !== '[::1]') {
  throw new Error(`refusing to test a gateway that is not on this machine: ${BASE_URL}`);
}
const BASE = BASE_URL.endsWith('/') ? BASE_URL : BASE_URL + '/';
const SHOTS_DIR = process.env.SANDCELL_SHOTS_DIR ||
  fs.mkdtempSync(path.join(os.tmpdir(), 'sandcell-shots-'));
fs.mkdirSync(SHOTS_DIR, { recursive: true });
const CHROMIUM = process.env.SANDCELL_CHROMIUM || '/usr/bin/chromium';

async function api(method, p, body) {
  const headers = { Authorization: 'token ' + TOKEN };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

let browser = null;
async function getBrowser() {
  if (!browser) {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  }
  return browser;
}
async function closeBrowser() {
  if (browser) await browser.close();
  browser = null;
}

// Opens the page as a user would, from the URL the gateway printed (with ?token=), in a fresh
// browser context (its own localStorage). Every kernel the page starts is recorded, so that
// close() can shut them down.
async function openPage(t, opts = {}) {
  const b = await getBrowser();
  const context = await b.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true, ...opts.context });
  const page = await context.newPage();
  const kernels = new Set();
  const errors = [];
  page.on('pageerror', e => errors.push(e.message));
  page.on('console', m => { if (m.type() === 'error' && !/favicon/.test(m.text())) errors.push(m.text()); });
  page.on('response', async res => {
    if (res.request().method() === 'POST' && /\/api\/kernels$/.test(new URL(res.url()).pathname) && res.status() === 201) {
      try { kernels.add((await res.json()).id); } catch (e) { /* page gone */ }
    }
  });
  await page.goto(`${opts.base || BASE}?token=${encodeURIComponent(TOKEN)}`);
  await waitStatus(page, 'idle', 20000);
  const nb = {
    page, context, kernels, errors,
    async close() {
      await context.close().catch(() => {});
      for (const id of kernels) await api('DELETE', `api/kernels/${id}`).catch(() => {});
    }
  };
  if (t && t.after) t.after(() => nb.close());
  return nb;
}

// A TCP proxy in front of the gateway, for a network blip: cut(true) drops every connection
// through it and refuses new ones until unblock().
async function startProxy() {
  const target = new URL(BASE);
  const sockets = new Set();
  let blocked = false;
  const server = net.createServer(client => {
    if (blocked) { client.destroy(); return; }
    const up = net.connect(Number(target.port), target.hostname);
    sockets.add(client);
    sockets.add(up);
    const done = () => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    for (const s of [client, up]) { s.on('error', done); s.on('close', done); }
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}${target.pathname}`,
    cut(block) {
      blocked = !!block;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    unblock() { blocked = false; },
    close() {
      this.cut(true);
      return new Promise(resolve => server.close(resolve));
    }
  };
}

// The kernel status as the page shows it ("Kernel idle" -> "idle").
async function statusText(page) {
  return (await page.locator('#kernel-status').innerText()).replace(/^Kernel\s+/i, '').trim().toLowerCase();
}
async function waitStatus(page, state, timeout = 15000) {
  await page.waitForFunction(s => {
    const el = document.querySelector('#kernel-status');
    return el && el.innerText.trim().toLowerCase() === 'kernel ' + s;
  }, state, { timeout });
}

const cell = (page, i) => page.locator('section.cell').nth(i);
const editorOf = (page, i) => cell(page, i).locator('textarea');
const promptOf = async (page, i) => (await cell(page, i).locator('.prompt').innerText()).trim();
const outputText = async (page, i) => cell(page, i).locator('.outputs').innerText();

// Puts multi-line code into a cell's editor as one text insertion (no key events, so the
// editor's auto-indent does not add to the code's own indentation).
async function setCode(page, i, code) {
  const ta = editorOf(page, i);
  await ta.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(code);
}

// Waits until cell i shows an execution count (it finished) and returns its prompt.
async function waitDone(page, i, timeout = 30000) {
  await page.waitForFunction(n => {
    const c = document.querySelectorAll('section.cell')[n];
    return c && /^\[\d+\]:$/.test(c.querySelector('.prompt').textContent.trim());
  }, i, { timeout });
  return promptOf(page, i);
}

async function waitOutput(page, i, re, timeout = 30000) {
  await page.waitForFunction(([n, src, flags]) => {
    const c = document.querySelectorAll('section.cell')[n];
    return c && new RegExp(src, flags).test(c.querySelector('.outputs').innerText);
  }, [i, re.source, re.flags], { timeout });
}

async function shot(page, name, fullPage = false) {
  const file = path.join(SHOTS_DIR, `notebook-${name}.png`);
  if (fullPage) {
    // A window as tall as the notebook, so the sticky header and footer are where they belong.
    const size = page.viewportSize();
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: size.width, height: Math.min(height, 4000) });
    await page.screenshot({ path: file });
    await page.setViewportSize(size);
  } else {
    await page.screenshot({ path: file });
  }
  console.log(`# screenshot: ${file}`);
  return file;
}

// The width and height in a PNG's IHDR chunk.
function pngSize(buf) {
  assert.equal(buf.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'not a PNG');
  assert.equal(buf.subarray(12, 16).toString('latin1'), 'IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

module.exports = {
  BASE, TOKEN, SHOTS_DIR, api, getBrowser, closeBrowser, openPage, startProxy, statusText, waitStatus,
  cell, editorOf, promptOf, outputText, setCode, waitDone, waitOutput, shot, pngSize
};
