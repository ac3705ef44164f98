'use strict';
// End-to-end tests of the notebook page that the gateway serves at `/`, in Chromium, through
// what a user sees and does: keys typed into the editor, buttons, and the DOM that results.
//
//   tests/gateway_it/run_js.py --dir browser      (starts a gateway, sets SANDCELL_GW_*)
//   cd tests/js && SANDCELL_GW_URL=http://127.0.0.1:PORT/ SANDCELL_GW_TOKEN=T \
//       node --test --test-concurrency=1 browser/notebook.test.js

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const L = require('./lib');

const { cell, editorOf, promptOf, outputText, setCode, waitDone, waitOutput, waitStatus, statusText, shot } = L;

test.after(() => L.closeBrowser());

test('run a cell: typed code, Shift-Enter, output and execution count', async t => {
  const { page, errors } = await L.openPage(t);
  assert.ok(!page.url().includes('token'), `the token is still in the address bar: ${page.url()}`);
  await editorOf(page, 0).click();
  await page.keyboard.type('x = 6 * 7\nprint("hello", x)\nx + 1');
  // the editor shows the code highlighted, with line numbers
  assert.equal(await cell(page, 0).locator('.editor-view .tok-builtin').first().innerText(), 'print');
  assert.deepEqual(await cell(page, 0).locator('.editor-view .ln').evaluateAll(ls => ls.map(l => l.dataset.line)), ['1', '2', '3']);
  await page.keyboard.press('Shift+Enter');
  assert.equal(await waitDone(page, 0), '[1]:');
  await waitOutput(page, 0, /hello 42/);
  assert.match(await outputText(page, 0), /hello 42\s+43/);
  // Shift-Enter made a new cell at the end and moved to it
  assert.equal(await page.locator('section.cell').count(), 2);
  assert.ok(await editorOf(page, 1).evaluate(ta => ta === document.activeElement), 'the new cell has the focus');
  await waitStatus(page, 'idle');
  await shot(page, 'run');
  assert.deepEqual(errors, []);
});

test('streamed output appears while the cell still runs', async t => {
  const { page } = await L.openPage(t);
  await setCode(page, 0, 'import time\nfor i in range(3):\n    print(i, flush=True); time.sleep(1)');
  const started = Date.now();
  await page.keyboard.press('Control+Enter');
  // the moment '0' is on the page, the cell is still running
  const seen = await page.waitForFunction(() => {
    const c = document.querySelector('section.cell');
    const out = c.querySelector('.outputs').innerText;
    if (!/^0\b/.test(out.trim())) return null;
    return { out, prompt: c.querySelector('.prompt').textContent.trim(),
             status: document.querySelector('#kernel-status').innerText.trim() };
  }, null, { timeout: 10000, polling: 50 }).then(h => h.jsonValue());
  const firstAt = Date.now() - started;
  assert.equal(seen.prompt, '[*]:');
  assert.equal(seen.status, 'Kernel busy');
  assert.ok(!/2/.test(seen.out), `all output came at once: ${JSON.stringify(seen.out)}`);
  await shot(page, 'streaming');
  assert.equal(await waitDone(page, 0, 15000), '[1]:');
  const doneAt = Date.now() - started;
  assert.ok(doneAt - firstAt > 1500, `'0' came ${firstAt} ms after the run, the end at ${doneAt} ms`);
  assert.match((await outputText(page, 0)).trim(), /^0\s+1\s+2$/);
  await waitStatus(page, 'idle');
});

test('an error shows a coloured traceback with the exception name', async t => {
  const { page } = await L.openPage(t);
  await setCode(page, 0, 'def f(n):\n    return n / 0\n\nf(1)');
  await page.keyboard.press('Shift+Enter');
  await waitDone(page, 0);
  const err = cell(page, 0).locator('.output-error');
  await err.waitFor();
  assert.match(await err.innerText(), /ZeroDivisionError: division by zero/);
  assert.match(await err.innerText(), /line 4/);
  const colours = await err.locator('span').evaluateAll(spans => spans.map(s => ({
    text: s.textContent, color: getComputedStyle(s).color, cls: s.className
  })));
  const base = await err.locator('pre').evaluate(p => getComputedStyle(p).color);
  const coloured = colours.filter(s => s.color !== base);
  assert.ok(coloured.length >= 3, `too few coloured spans: ${JSON.stringify(colours)}`);
  const ename = colours.find(s => s.text === 'ZeroDivisionError');
  assert.ok(ename, 'the exception name is a span of its own');
  const [r, g, b] = ename.color.match(/\d+/g).map(Number);
  assert.ok(r > 140 && g < 90 && b < 90, `the exception name is not red: ${ename.color}`);
  await shot(page, 'error');
});

test('a matplotlib plot under the moderate profile, picked in the profile picker', async t => {
  const nb = await L.openPage(t);
  const { page } = nb;
  const specs = (await L.api('GET', 'api/kernelspecs')).body;
  const profile = n => specs.kernelspecs[n].spec.metadata.sandcell.profile;
  // the page shows the operator's default first; pick the moderate kernelspec by name
  const target = specs.kernelspecs['sandcell-moderate'] ? 'sandcell-moderate'
    : Object.keys(specs.kernelspecs).find(n => profile(n) === 'moderate');
  assert.ok(target, 'no moderate kernelspec');
  assert.equal(await page.locator('#profile').inputValue(), specs.default);
  const before = [...nb.kernels];
  if (target !== specs.default) {
    await page.locator('#profile').selectOption(target);
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /moderate/);
    await dialog.getByRole('button', { name: 'Switch profile' }).click();
    await page.waitForFunction(n => document.body.dataset.profile === 'moderate' &&
      document.querySelector('#profile').value === n, target);
    await waitStatus(page, 'idle', 20000);
    await page.waitForFunction(() => document.querySelector('#kernel-status').innerText.includes('idle'));
    for (let i = 0; i < 50 && nb.kernels.size < before.length + 1; i++) await new Promise(r => setTimeout(r, 100));
    assert.equal(nb.kernels.size, before.length + 1, 'a new kernel was started');
    const old = await L.api('GET', `api/kernels/${before[0]}`);
    assert.equal(old.status, 404, 'the old kernel was shut down');
  }
  assert.match(await page.locator('#profile-info').innerText(), /no network/);

  // A notebook worth a screenshot: streamed output, a plot, an HTML table and an error.
  await setCode(page, 0, 'import sys, time\nfor step in range(1, 4):\n    print(f"step {step}/3: loss={1/step:.3f}", flush=True)\n    time.sleep(0.2)\nprint("warning: low sample count", file=sys.stderr)');
  await page.keyboard.press('Shift+Enter');
  await setCode(page, 1, 'import matplotlib.pyplot as plt\nimport math\nxs = [i / 10 for i in range(63)]\nplt.figure(figsize=(6, 3))\nplt.plot(xs, [math.sin(x) for x in xs], label="sin")\nplt.plot(xs, [math.cos(x) for x in xs], label="cos")\nplt.legend(); plt.title("A plot from a sandboxed kernel")\nplt.show()');
  await page.keyboard.press('Shift+Enter');
  await setCode(page, 2, 'from IPython.display import HTML, display\ndisplay(HTML("<table><thead><tr><th>profile</th><th>memory</th></tr></thead>"\n             "<tbody><tr><td>strict</td><td>100 MiB</td></tr><tr><td>moderate</td><td>512 MiB</td></tr></tbody></table>"\n             "<script>document.body.textContent = \'scripts ran\'</script>"))');
  await page.keyboard.press('Shift+Enter');
  await setCode(page, 3, 'values = {"a": 1}\nvalues["b"]');
  await page.keyboard.press('Shift+Enter');

  await waitDone(page, 1, 60000);
  const img = cell(page, 1).locator('.outputs img');
  await img.waitFor();
  const src = await img.getAttribute('src');
  assert.match(src, /^data:image\/png;base64,/);
  const size = L.pngSize(Buffer.from(src.slice(src.indexOf(',') + 1), 'base64'));
  assert.ok(size.width > 100 && size.height > 100, `implausible plot size ${size.width}x${size.height}`);
  assert.ok(await img.evaluate(i => i.complete && i.naturalWidth > 0), 'the image did not decode');

  // the HTML output is in a sandboxed frame: shown, sized, its script dead, no token in it
  await waitDone(page, 2);
  const frame = cell(page, 2).locator('iframe.output-html');
  await frame.waitFor();
  assert.equal(await frame.getAttribute('sandbox'), 'allow-same-origin');
  if (L.TOKEN.length >= 8) assert.ok(!(await frame.getAttribute('srcdoc')).includes(L.TOKEN), 'the token is in the frame');
  const where = await frame.evaluate(f => [f.contentDocument.URL, f.contentDocument.referrer, location.href]);
  for (const w of where) assert.ok(!/token=/.test(w), `a URL with the token: ${w}`);
  const inner = page.frameLocator('section.cell:nth-child(3) iframe.output-html');
  assert.equal(await inner.locator('td').first().innerText(), 'strict');
  assert.ok(!/scripts ran/.test(await inner.locator('body').innerText()), 'a script in HTML output ran');
  await page.waitForFunction(() => {
    const f = document.querySelector('iframe.output-html');
    return f && f.dataset.sized && f.getBoundingClientRect().height > 60;
  });

  await waitDone(page, 3);
  assert.match(await outputText(page, 3), /KeyError: 'b'/);
  assert.match(await outputText(page, 0), /step 3\/3/);
  await waitStatus(page, 'idle');
  await page.locator('section.cell').nth(4).locator('textarea').blur();
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'overview', true);
});

test('interrupt stops a running loop', async t => {
  const { page } = await L.openPage(t);
  await setCode(page, 0, 'n = 0\nwhile True:\n    n += 1');
  await page.keyboard.press('Control+Enter');
  await waitStatus(page, 'busy');
  await page.waitForFunction(() => document.querySelector('.prompt').textContent === '[*]:' &&
                                   /Elapsed/.test(document.querySelector('.meter').innerText));
  await page.getByRole('button', { name: 'Interrupt' }).click();
  await waitOutput(page, 0, /KeyboardInterrupt/, 15000);
  assert.equal(await waitDone(page, 0), '[1]:');
  await waitStatus(page, 'idle');
  await shot(page, 'interrupt');
});

test('restart: the kernel comes back idle and earlier variables are gone', async t => {
  const { page } = await L.openPage(t);
  await setCode(page, 0, 'secret = 41\nsecret');
  await page.keyboard.press('Shift+Enter');
  await waitOutput(page, 0, /41/);
  await page.getByRole('button', { name: 'Restart', exact: true }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Restart', exact: true }).click();
  await waitStatus(page, 'idle', 20000);
  await setCode(page, 1, 'secret + 1');
  await page.keyboard.press('Control+Enter');
  assert.equal(await waitDone(page, 1), '[1]:', 'a restarted kernel counts from 1 again');
  assert.match(await outputText(page, 1), /NameError: name 'secret' is not defined/);
  await shot(page, 'restart');
});

test('reload during a run: what was printed while the page was away is shown, then the end', async t => {
  const { page, kernels } = await L.openPage(t);
  await setCode(page, 0, 'import time\nfor i in range(8):\n    print("tick", i, flush=True)\n    time.sleep(0.5)\nprint("done")');
  await page.keyboard.press('Control+Enter');
  await waitOutput(page, 0, /tick 1/, 10000);
  // The page is away for about 1.5 s: its script is held back while the kernel keeps printing.
  await page.route('**/static/notebook.js', async route => {
    await new Promise(r => setTimeout(r, 1500));
    await route.continue();
  });
  const beforeReload = await outputText(page, 0);
  const reloadedAt = Date.now();
  await page.reload();
  await page.unroute('**/static/notebook.js');
  await page.waitForFunction(() => document.querySelectorAll('section.cell .outputs pre').length > 0);
  const first = await outputText(page, 0);
  assert.ok(first.startsWith(beforeReload.trim().slice(0, 6)), 'the outputs from before the reload are restored');
  // ticks that were printed while the page was loading arrive from the gateway's replay
  await waitOutput(page, 0, /done/, 15000);
  assert.ok(Date.now() - reloadedAt > 1500);
  assert.equal(await waitDone(page, 0), '[1]:');
  const ticks = (await outputText(page, 0)).match(/tick \d/g);
  assert.deepEqual(ticks, [0, 1, 2, 3, 4, 5, 6, 7].map(i => `tick ${i}`), 'every tick once, in order');
  assert.equal(kernels.size, 1, 'the page reconnected to its kernel, it did not start another');
  await waitStatus(page, 'idle');
  await shot(page, 'reload');
});

test('a network blip: "reconnecting", then what was printed meanwhile, in order', async t => {
  const proxy = await L.startProxy();
  t.after(() => proxy.close());
  const { page, kernels } = await L.openPage(t, { base: proxy.url });
  await setCode(page, 0, 'import time\nfor i in range(8):\n    print("tick", i, flush=True)\n    time.sleep(0.4)\nprint("done")');
  await page.keyboard.press('Control+Enter');
  await waitOutput(page, 0, /tick 1/, 10000);
  proxy.cut(true); // every connection dropped, new ones refused
  await waitStatus(page, 'reconnecting', 5000);
  assert.equal(await promptOf(page, 0), '[*]:');
  await shot(page, 'reconnecting');
  await new Promise(r => setTimeout(r, 1500));
  proxy.unblock();
  await waitOutput(page, 0, /done/, 20000);
  assert.equal(await waitDone(page, 0), '[1]:');
  const ticks = (await outputText(page, 0)).match(/tick \d/g);
  assert.deepEqual(ticks, [0, 1, 2, 3, 4, 5, 6, 7].map(i => `tick ${i}`), 'every tick once, in order');
  assert.equal(kernels.size, 1, 'the same kernel');
  await waitStatus(page, 'idle');
});

test('save as .ipynb and open an .ipynb', async t => {
  const { page } = await L.openPage(t);
  await page.locator('#nb-name').fill('roundtrip');
  await editorOf(page, 0).click();
  await page.keyboard.type('print("saved!")');
  await page.keyboard.press('Shift+Enter');
  await waitOutput(page, 0, /saved!/);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Save .ipynb' }).click()
  ]);
  assert.equal(download.suggestedFilename(), 'roundtrip.ipynb');
  const saved = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
  assert.equal(saved.nbformat, 4);
  assert.equal(saved.nbformat_minor, 5);
  assert.equal(saved.metadata.kernelspec.language, 'python');
  const c0 = saved.cells[0];
  assert.equal(c0.cell_type, 'code');
  assert.match(c0.id, /^[A-Za-z0-9_-]{1,64}$/);
  assert.equal([].concat(c0.source).join(''), 'print("saved!")');
  assert.equal(c0.execution_count, 1);
  assert.deepEqual(c0.outputs, [{ output_type: 'stream', name: 'stdout', text: ['saved!\n'] }]);
  assert.deepEqual(c0.metadata, {});

  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sandcell-nb-')), 'analysis.ipynb');
  fs.writeFileSync(file, JSON.stringify({
    nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: [
      { id: 'intro', cell_type: 'markdown', metadata: {}, source: ['# Quarterly numbers\n', 'Some *notes* here.'] },
      { id: 'calc', cell_type: 'code', metadata: { tags: ['x'] }, execution_count: 5, source: ['y = 2\n', 'print(y * 21)'],
        outputs: [{ output_type: 'stream', name: 'stdout', text: ['42\n'] },
                  { output_type: 'execute_result', execution_count: 5, metadata: {}, data: { 'text/plain': ['"a result"'] } }] }
    ]
  }));
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.getByRole('button', { name: 'Open…' }).click()
  ]);
  await chooser.setFiles(file);
  // the page asks before it replaces cells that have work in them
  const dialog = page.getByRole('dialog');
  assert.match(await dialog.innerText(), /replaces the cells/);
  await dialog.getByRole('button', { name: 'Open', exact: true }).click();
  await page.waitForFunction(() => document.querySelectorAll('section.cell').length === 2 &&
                                    document.querySelector('.cell-markdown h1'));
  assert.equal(await cell(page, 0).locator('h1').innerText(), 'Quarterly numbers');
  assert.equal(await cell(page, 0).locator('em').innerText(), 'notes');
  assert.equal(await editorOf(page, 1).inputValue(), 'y = 2\nprint(y * 21)');
  assert.equal(await promptOf(page, 1), '[5]:');
  assert.match(await outputText(page, 1), /42\s+"a result"/);
  assert.equal(await page.locator('#nb-name').inputValue(), 'analysis.ipynb');
  assert.equal(await page.title(), 'analysis.ipynb – sandcell');
  await shot(page, 'opened');
  // saving again keeps the markdown cell and the code cell's metadata
  const [again] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Control+s')]);
  const resaved = JSON.parse(fs.readFileSync(await again.path(), 'utf8'));
  assert.deepEqual(resaved.cells.map(c => [c.id, c.cell_type]), [['intro', 'markdown'], ['calc', 'code']]);
  assert.equal(resaved.cells[0].source.join(''), '# Quarterly numbers\nSome *notes* here.');
  assert.deepEqual(resaved.cells[1].metadata, { tags: ['x'] });
  assert.equal(resaved.cells[1].outputs[1].data['text/plain'].join(''), '"a result"');
});

test('validate marks the line of a security warning', async t => {
  const { page } = await L.openPage(t);
  await setCode(page, 0, 'x = "1 + 1"\ny = eval(x)\nprint(y)');
  await cell(page, 0).getByRole('button', { name: 'Validate cell 1' }).click();
  const panel = cell(page, 0).locator('.validation');
  await panel.locator('.finding').first().waitFor({ timeout: 15000 });
  const finding = panel.locator('.finding', { hasText: 'eval' });
  assert.match(await finding.innerText(), /Line 2/);
  const marked = await cell(page, 0).locator('.editor-view .ln.marked').evaluateAll(ls => ls.map(l => [l.dataset.line, l.title]));
  assert.equal(marked.length, 1, JSON.stringify(marked));
  assert.equal(marked[0][0], '2');
  assert.match(marked[0][1], /eval/);
  await shot(page, 'validate');
  // editing the code makes the results stale and removes the line marks
  await editorOf(page, 0).press('End');
  await page.keyboard.type(' ');
  assert.equal(await cell(page, 0).locator('.editor-view .ln.marked').count(), 0);
  assert.match(await panel.innerText(), /changed/);
});

test('resource meter: memory and elapsed time while a cell runs', async t => {
  const { page } = await L.openPage(t);
  await setCode(page, 0, 'import time\nblock = bytearray(40 * 1024 * 1024)\nt0 = time.time()\nwhile time.time() - t0 < 2.5:\n    pass');
  await page.keyboard.press('Control+Enter');
  const meter = cell(page, 0).locator('.meter');
  await page.waitForFunction(() => {
    const m = document.querySelector('section.cell .meter');
    return m && !m.hidden && /Memory\s+[\d.]+\s+MiB/.test(m.innerText) && /Elapsed\s+(1|2)\.\d s/.test(m.innerText);
  }, null, { timeout: 10000, polling: 100 });
  const during = await meter.innerText();
  assert.match(during, /CPU\s+\d/);
  const mem = Number(during.match(/Memory\s+([\d.]+)\s+MiB/)[1]);
  assert.ok(mem >= 40, `memory ${mem} MiB, with a 40 MiB block allocated`);
  // The limit counts growth over the kernel's start-up size; the meter says how much of it.
  assert.match(during, /Memory\s+[\d.]+\s+MiB \(\+[\d.]+\s+(MiB|KiB|B) of [\d.]+\s+(MiB|GiB)\)/);
  assert.equal(await promptOf(page, 0), '[*]:');
  await shot(page, 'meter');
  await waitDone(page, 0, 15000);
  await page.waitForFunction(() => /Ran for\s+\d/.test(document.querySelector('section.cell .meter').innerText));
  const after = await meter.innerText();
  assert.match(after, /Ran for\s+(2\.[5-9]|[3-9]\.\d) s/);
  assert.match(after, /CPU\s+[1-9]\.\d s/); // a busy loop: about as much CPU as time, on a quiet machine
  assert.match(after, /Peak memory\s+[\d.]+\s+MiB/);
});

test('keyboard only: reach the editor, run, add a cell with a button and a shortcut', async t => {
  const { page } = await L.openPage(t);
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  // the skip link, then Tab, reach the first cell's editor
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to the cells');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  assert.ok(await editorOf(page, 0).evaluate(ta => ta === document.activeElement), 'Tab reached the editor');
  await page.keyboard.type('print("by keyboard")');
  await page.keyboard.press('Shift+Enter');
  await waitOutput(page, 0, /by keyboard/);
  assert.ok(await editorOf(page, 1).evaluate(ta => ta === document.activeElement));
  // Tab indents inside the editor; Escape then Tab leaves it, for the cell's buttons
  await page.keyboard.press('Tab');
  assert.equal(await editorOf(page, 1).inputValue(), '    ');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Tab');
  const focused = () => page.evaluate(() => document.activeElement.getAttribute('aria-label') || document.activeElement.textContent.trim());
  assert.equal(await focused(), 'Run cell 2');
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).boxShadow);
  assert.notEqual(ring, 'none', 'a focused button shows a focus ring');
  for (let i = 0; i < 5 && (await focused()) !== 'Insert a cell below cell 2'; i++) await page.keyboard.press('Tab');
  assert.equal(await focused(), 'Insert a cell below cell 2');
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('section.cell').count(), 3);
  assert.ok(await editorOf(page, 2).evaluate(ta => ta === document.activeElement), 'the new cell has the focus');
  // Alt-Enter runs and inserts a cell below
  await page.keyboard.type('1 + 1');
  await page.keyboard.press('Alt+Enter');
  await waitOutput(page, 2, /^2$/m);
  assert.equal(await page.locator('section.cell').count(), 4);
  assert.ok(await editorOf(page, 3).evaluate(ta => ta === document.activeElement));
  // the toolbar's buttons work with Space: Shift-Tab back up to "Add cell"
  await page.keyboard.press('Escape');
  for (let i = 0; i < 40 && (await focused()) !== 'Add cell'; i++) await page.keyboard.press('Shift+Tab');
  assert.equal(await focused(), 'Add cell');
  await page.keyboard.press('Space');
  assert.equal(await page.locator('section.cell').count(), 5);
  assert.equal(await statusText(page), 'idle');
  await shot(page, 'keyboard');
});

test('input() asks for a line in the page', async t => {
  const { page } = await L.openPage(t);
  await setCode(page, 0, 'name = input("Your name? ")\nprint("Hello,", name)');
  await page.keyboard.press('Control+Enter');
  const box = page.getByLabel('Your name?');
  await box.waitFor({ timeout: 10000 });
  assert.ok(await box.evaluate(i => i === document.activeElement), 'the input box has the focus');
  await page.keyboard.type('Ada');
  await page.keyboard.press('Enter');
  await waitOutput(page, 0, /Hello, Ada/);
  assert.equal(await waitDone(page, 0), '[1]:');
  assert.match(await outputText(page, 0), /Your name\? Ada/);
});

test('a kernel that is gone is replaced: outputs stay, a notice says so', async t => {
  const nb = await L.openPage(t);
  const { page } = nb;
  await setCode(page, 0, 'print("before")');
  await page.keyboard.press('Shift+Enter');
  await waitOutput(page, 0, /before/);
  const [old] = [...nb.kernels];
  assert.equal((await L.api('DELETE', `api/kernels/${old}`)).status, 204);
  const notice = page.locator('.notice', { hasText: 'no longer exists' });
  await notice.waitFor({ timeout: 15000 });
  await waitStatus(page, 'idle', 15000);
  assert.equal(nb.kernels.size, 2, 'a new kernel was started');
  assert.match(await outputText(page, 0), /before/, 'the outputs stayed');
  await setCode(page, 1, 'print("after")');
  await page.keyboard.press('Control+Enter');
  await waitOutput(page, 1, /after/);
  assert.equal(await waitDone(page, 1), '[1]:');
  await shot(page, 'kernel-gone');
});
