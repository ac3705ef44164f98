'use strict';
// Two kernels at once through one KernelManager: concurrent executes, no cross-talk.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

describe('two concurrent kernels', { timeout: 180000 }, () => {
  let manager;
  let a;
  let b;

  before(async () => {
    const settings = h.makeSettings('v1');
    manager = new h.KernelManager({ serverSettings: settings });
    await h.withTimeout(manager.ready, 30000, 'KernelManager ready');
    const name = await h.defaultKernelName(settings);
    [a, b] = await h.withTimeout(
      Promise.all([manager.startNew({ name }), manager.startNew({ name })]),
      90000,
      'two startNew'
    );
    await Promise.all([h.waitIdle(a), h.waitIdle(b)]);
  });

  after(async () => {
    for (const k of [a, b]) {
      if (k && !k.isDisposed) {
        try {
          await h.withTimeout(k.shutdown(), 30000, 'shutdown');
        } catch (e) {
          // reported by the failing test
        }
        k.dispose();
      }
    }
    manager.dispose();
  });

  it('are distinct', () => {
    assert.notEqual(a.id, b.id);
  });

  it('keep their own state', async () => {
    await Promise.all([h.execute(a, "x = 'in-a'"), h.execute(b, "x = 'in-b'")]);
    const [ra, rb] = await Promise.all([h.execute(a, 'x'), h.execute(b, 'x')]);
    assert.equal(ra.result, "'in-a'");
    assert.equal(rb.result, "'in-b'");
  });

  it('run concurrently without mixing output', async () => {
    const code = tag =>
      `import time\nfor i in range(5):\n    print('${tag}', i, flush=True)\n    time.sleep(0.1)\n`;
    const t0 = Date.now();
    const [ra, rb] = await Promise.all([h.execute(a, code('A')), h.execute(b, code('B'))]);
    assert.equal(ra.stdout, [0, 1, 2, 3, 4].map(i => `A ${i}\n`).join(''));
    assert.equal(rb.stdout, [0, 1, 2, 3, 4].map(i => `B ${i}\n`).join(''));
    // Both ran at the same time: well under the 1 s they would take one after the other.
    assert.ok(Date.now() - t0 < 5000);
  });

  it('interrupting one leaves the other running', async () => {
    const fa = a.requestExecute({ code: 'import time\ntime.sleep(30)' });
    const fb = b.requestExecute({ code: "import time\ntime.sleep(1.5)\nprint('b done')" });
    let started = false;
    fa.onIOPub = m => {
      started = started || m.header.msg_type === 'execute_input';
    };
    await h.waitFor(() => started, 10000, 'A busy');
    await h.sleep(200);
    await a.interrupt();
    const ra = await h.withTimeout(fa.done, 15000, 'A interrupted');
    assert.equal(ra.content.ename, 'KeyboardInterrupt');
    const rb = await h.withTimeout(fb.done, 15000, 'B finished');
    assert.equal(rb.content.status, 'ok');
  });
});
