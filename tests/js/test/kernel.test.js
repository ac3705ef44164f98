'use strict';
// JupyterLab's own client library against the gateway: start, execute, busy/idle order,
// interrupt, restart, reconnect, shutdown and list, over both WebSocket framings.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers');

const V1 = 'v1.kernel.websocket.jupyter.org';

for (const framing of ['v1', 'legacy']) {
  const title = `a kernel through @jupyterlab/services (${framing} framing)`;
  describe(title, { timeout: 240000 }, () => {
    let settings;
    let manager;
    let kernel;

    before(async () => {
      settings = h.makeSettings(framing);
      manager = new h.KernelManager({ serverSettings: settings });
      await h.withTimeout(manager.ready, 30000, 'KernelManager ready');
      const name = await h.defaultKernelName(settings);
      kernel = await h.withTimeout(manager.startNew({ name }), 60000, 'startNew');
      await h.waitIdle(kernel);
    });

    after(async () => {
      if (kernel && !kernel.isDisposed) {
        try {
          await h.withTimeout(kernel.shutdown(), 30000, 'shutdown in after()');
        } catch (e) {
          // the test that failed reports it
        }
        kernel.dispose();
      }
      manager.dispose();
    });

    it('negotiates the framing', () => {
      // _selectedProtocol is what KernelConnection chose from the server's answer.
      assert.equal(kernel._selectedProtocol, framing === 'v1' ? V1 : '');
    });

    it('answers kernel_info', async () => {
      const reply = await h.withTimeout(kernel.requestKernelInfo(), 20000, 'kernel_info');
      assert.equal(reply.content.status, 'ok');
      assert.equal(reply.content.language_info.name, 'python');
    });

    it('executes with ordered iopub output: busy, input, stream, result, idle', async () => {
      const r = await h.execute(kernel, "print('hello')\n6 * 7");
      assert.deepEqual(h.types(r.iopub), [
        'status:busy',
        'execute_input',
        'stream',
        'execute_result',
        'status:idle'
      ]);
      for (const m of r.iopub) {
        assert.equal(m.parent_header.msg_id, r.future.msg.header.msg_id);
      }
      assert.equal(r.reply.content.status, 'ok');
      assert.equal(r.stdout, 'hello\n');
      assert.equal(r.result, '42');
      assert.equal(r.reply.content.execution_count, r.iopub[1].content.execution_count);
    });

    it('delivers output while the cell runs', async () => {
      const r = await h.execute(
        kernel,
        'import time\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.3)\n'
      );
      const streams = r.iopub.filter(m => m.header.msg_type === 'stream');
      assert.equal(streams.map(m => m.content.text).join(''), '0\n1\n2\n3\n');
      const idle = r.iopub[r.iopub.length - 1];
      const lead = idle.t - streams[0].t;
      assert.ok(lead > 600, `first output only ${lead} ms before idle`);
    });

    it('reports errors', async () => {
      const r = await h.execute(kernel, '1/0');
      assert.equal(r.reply.content.status, 'error');
      assert.equal(r.reply.content.ename, 'ZeroDivisionError');
      assert.ok(h.types(r.iopub).includes('error'));
    });

    it('lists the running kernel', async () => {
      const listed = await h.KernelAPI.listRunning(settings);
      const mine = listed.find(k => k.id === kernel.id);
      assert.ok(mine, `kernel ${kernel.id} not in ${JSON.stringify(listed)}`);
      assert.equal(mine.name, kernel.name);
      await manager.refreshRunning();
      assert.ok([...manager.running()].some(k => k.id === kernel.id));
    });

    it('interrupts a busy kernel', async () => {
      const future = kernel.requestExecute({ code: 'import time\ntime.sleep(30)' });
      let started = false;
      future.onIOPub = msg => {
        if (msg.header.msg_type === 'execute_input') {
          started = true;
        }
      };
      await h.waitFor(() => started, 10000, 'execute_input of the sleeping cell');
      await h.sleep(300);
      const t0 = Date.now();
      await h.withTimeout(kernel.interrupt(), 10000, 'interrupt');
      const reply = await h.withTimeout(future.done, 15000, 'reply of the interrupted cell');
      assert.ok(Date.now() - t0 < 10000);
      assert.equal(reply.content.status, 'error');
      assert.equal(reply.content.ename, 'KeyboardInterrupt');
      assert.equal((await h.execute(kernel, '1 + 1')).result, '2');
    });

    it('restarts: the state is gone and the kernel works', async () => {
      assert.equal((await h.execute(kernel, 'x = 42; x')).result, '42');
      const statuses = [];
      const track = (_, status) => statuses.push(status);
      kernel.statusChanged.connect(track);
      await h.withTimeout(kernel.restart(), 60000, 'restart');
      await h.waitIdle(kernel);
      await h.sleep(300);
      kernel.statusChanged.disconnect(track);
      // A `status: restarting` message on iopub means "auto-restarted by the server" to this
      // client: it then clears its state and reconnects a second time (and rejects the
      // kernel_info future of the first reconnect). jupyter-server sends none for a restart
      // that the client asked for.
      assert.ok(
        !statuses.includes('autorestarting'),
        `requested restart seen as an automatic one; statuses: ${statuses.join(' ')}`
      );
      const r = await h.execute(kernel, 'x');
      assert.equal(r.reply.content.status, 'error');
      assert.equal(r.reply.content.ename, 'NameError');
      assert.equal((await h.execute(kernel, "'after restart'")).result, "'after restart'");
    });

    it('restarts while busy', async () => {
      const future = kernel.requestExecute({ code: 'import time\ntime.sleep(30)' });
      future.done.catch(() => {}); // the restart may cancel it
      let started = false;
      future.onIOPub = msg => {
        started = started || msg.header.msg_type === 'execute_input';
      };
      await h.waitFor(() => started, 10000, 'execute_input of the sleeping cell');
      await h.withTimeout(kernel.restart(), 60000, 'restart while busy');
      await h.waitIdle(kernel);
      assert.equal((await h.execute(kernel, "'fresh'")).result, "'fresh'");
    });

    it('reconnects and keeps executing', async () => {
      assert.equal((await h.execute(kernel, 'y = 5; y')).result, '5');
      await h.withTimeout(kernel.reconnect(), 30000, 'reconnect');
      await h.waitIdle(kernel);
      assert.equal((await h.execute(kernel, 'y * 2')).result, '10');
    });

    it('shuts down', async () => {
      const id = kernel.id;
      await h.withTimeout(kernel.shutdown(), 30000, 'shutdown');
      const listed = await h.KernelAPI.listRunning(settings);
      assert.ok(!listed.some(k => k.id === id), `kernel ${id} still listed after shutdown`);
      await assert.rejects(h.KernelAPI.getKernelModel(id, settings).then(m => {
        if (m === undefined) {
          throw new Error('gone');
        }
      }));
    });
  });
}
