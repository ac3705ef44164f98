// sandcell notebook: the page.
//
// State and persistence. The notebook (cells with their source, outputs, execution counts and
// the msg_id of each cell's latest execute_request), the kernel id and name, and the session
// id are kept in localStorage, under a key of this page's path (so gateways under different
// base URLs keep separate notebooks), saved a moment after every change and at once when the
// page goes away. On load the page reconnects to the same kernel: the gateway first replays
// what it buffered while no client was connected, and each message is routed to its cell by
// parent_header.msg_id. Message ids already seen are skipped, so nothing is shown twice.
// If the kernel is gone (404: the gateway was restarted, or culled it), a new kernel of the
// same kernelspec is started, the outputs on the page stay, and a notice says so.
//
// Output trust. Output is the untrusted code's. Text is always inserted as text (ANSI colours
// become spans). text/html is shown in an <iframe sandbox="allow-same-origin" srcdoc=...>
// *without* allow-scripts: nothing in it can run (its scripts, event handlers and javascript:
// URLs are all dead), so it cannot read this page, its storage (where the token is) or call
// the gateway; forms, pop-ups and top-level navigation are blocked by the sandbox too. The
// frame is same-origin only so that the page can measure its content and size it (an opaque
// frame would need a script of its own inside to report its height, which a CSP of
// `script-src 'self'` rightly forbids). Its own CSP, in the srcdoc, lets it load nothing but
// inline styles and data: images, so it cannot fetch from the gateway or the network either.
// Never add allow-scripts to that sandbox: with allow-same-origin it would give the output
// this page's powers. The token is taken out of the address bar before anything is rendered,
// and frames get no referrer. SVG is shown through <img>, where its scripts never run.
'use strict';
(function () {
  const S = window.Sandcell;
  const PATH_KEY = location.pathname;
  const STORE_KEY = 'sandcell.notebook:' + PATH_KEY;
  const TOKEN_KEY = 'sandcell.token:' + PATH_KEY;
  const MAX_STREAM = 1 << 20; // characters of one stream output kept on the page
  const MIME_ORDER = ['text/html', 'text/markdown', 'image/svg+xml', 'image/png', 'image/jpeg',
                      'image/gif', 'image/webp', 'application/json', 'text/latex', 'text/plain'];
  // What an HTML output frame may load: inline styles and data: images, nothing else.
  const FRAME_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; media-src data: blob:";
  const FRAME_CSS = 'html,body{margin:0}body{padding:4px 2px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",' +
    'Roboto,sans-serif;color:#1f2328;background:#fff;overflow-wrap:anywhere}table{border-collapse:collapse;' +
    'font-size:13px;margin:2px 0}th,td{border:1px solid #d8dde3;padding:4px 8px;text-align:right}' +
    'thead th{background:#f3f5f7}tbody tr:nth-child(even){background:#f8f9fb}img{max-width:100%}' +
    'pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:13px}';

  // ---------------------------------------------------------------- small helpers
  const $ = sel => document.querySelector(sel);
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }
  const ICONS = {
    run: '<svg viewBox="0 0 16 16"><path d="M4.5 2.8v10.4l8.3-5.2z" fill="currentColor"/></svg>',
    validate: '<svg viewBox="0 0 16 16"><path d="M8 1.5 2.8 3.4v4.1c0 3.1 2.2 5.8 5.2 6.9 3-1.1 5.2-3.8 5.2-6.9V3.4z" fill="none" stroke="currentColor" stroke-width="1.4"/><path d="m5.6 8 1.7 1.7 3.2-3.3" fill="none" stroke="currentColor" stroke-width="1.5"/></svg>',
    add: '<svg viewBox="0 0 16 16"><path d="M8 3v10M3 8h10" stroke="currentColor" stroke-width="1.6"/></svg>',
    up: '<svg viewBox="0 0 16 16"><path d="M8 13V3.5M3.8 7.5 8 3.3l4.2 4.2" fill="none" stroke="currentColor" stroke-width="1.6"/></svg>',
    down: '<svg viewBox="0 0 16 16"><path d="M8 3v9.5M3.8 8.5 8 12.7l4.2-4.2" fill="none" stroke="currentColor" stroke-width="1.6"/></svg>',
    del: '<svg viewBox="0 0 16 16"><path d="M3 4.5h10M6.3 4.5V3h3.4v1.5M4.5 4.5l.6 8.5h5.8l.6-8.5" fill="none" stroke="currentColor" stroke-width="1.4"/></svg>',
    close: '<svg viewBox="0 0 16 16"><path d="m4 4 8 8M12 4l-8 8" stroke="currentColor" stroke-width="1.6"/></svg>'
  };
  function iconButton(icon, label, onclick, extra) {
    const b = el('button', Object.assign({ type: 'button', class: 'icon-btn', 'aria-label': label, title: label, onclick }, extra || {}));
    b.innerHTML = ICONS[icon]; // static markup of this file
    b.firstChild.setAttribute('aria-hidden', 'true');
    b.firstChild.setAttribute('focusable', 'false');
    return b;
  }
  function fmtSeconds(s) {
    if (!isFinite(s) || s < 0) s = 0;
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 60) return Math.round(s) + ' s';
    return Math.floor(s / 60) + ' min ' + String(Math.round(s % 60)).padStart(2, '0') + ' s';
  }
  function fmtBytes(b) {
    // binary units, as the profiles' limits are set (512 MiB)
    if (b === null || b === undefined || !isFinite(b)) return '–';
    const u = [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];
    for (const [name, size] of u) {
      if (b >= size) {
        const v = b / size;
        return (Number.isInteger(v) || v >= 100 ? Math.round(v) : v.toFixed(1)) + ' ' + name;
      }
    }
    return b + ' B';
  }
  function fmtLimitSeconds(s) {
    return s >= 60 && s % 60 === 0 ? `${s / 60} min` : `${s} s`;
  }
  function joinText(v) { return Array.isArray(v) ? v.join('') : (v === null || v === undefined ? '' : String(v)); }
  function newCellId() {
    return Array.from(crypto.getRandomValues(new Uint8Array(6)), x => x.toString(16).padStart(2, '0')).join('');
  }

  // ---------------------------------------------------------------- the token
  // Taken from ?token= into sessionStorage, then out of the address bar (so that it is in no
  // history entry, bookmark, screenshot or referrer).
  function takeToken() {
    const u = new URL(location.href);
    if (u.searchParams.has('token')) {
      try { sessionStorage.setItem(TOKEN_KEY, u.searchParams.get('token')); } catch (e) { /* private mode */ }
      const t = u.searchParams.get('token');
      u.searchParams.delete('token');
      history.replaceState(history.state, '', u.pathname + u.search + u.hash);
      return t;
    }
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  // ---------------------------------------------------------------- state
  const nb = {
    name: 'Untitled.ipynb',
    metadata: {},
    cells: [],
    kernel: null,      // {id, name}
    sessionId: null,
    lastIdleCpu: null  // the kernel's CPU seconds when it was last seen idle
  };
  let specs = null;            // GET api/kernelspecs
  let client = null;
  let conn = 'starting';       // starting | connecting | connected | reconnecting | disconnected
  let kstate = 'starting';     // the kernel's last execution_state
  let connGen = 0;             // count of connections made
  let kernelInfo = null;
  let skew = null;             // min(local clock - message date): maps kernel times to ours
  const replyWaiters = new Map();
  const seen = new Set();
  const seenOrder = [];
  let lastFocusedCell = null;
  let authFailed = false;

  function remember(id) {
    seen.add(id);
    seenOrder.push(id);
    if (seenOrder.length > 2000) seen.delete(seenOrder.shift());
  }

  function makeCell(d) {
    d = d || {};
    const type = d.type || d.cell_type || 'code';
    return {
      id: d.id && /^[A-Za-z0-9_-]{1,64}$/.test(d.id) ? d.id : newCellId(),
      type: type === 'markdown' || type === 'raw' ? type : 'code',
      source: joinText(d.source),
      outputs: Array.isArray(d.outputs) ? d.outputs : [],
      count: typeof d.count === 'number' ? d.count : null,
      metadata: d.metadata && typeof d.metadata === 'object' ? d.metadata : {},
      attachments: d.attachments,
      msgId: d.msgId || null,
      inputCount: typeof d.inputCount === 'number' ? d.inputCount : null,
      running: !!d.running,
      gen: -1,                 // requests sent before this page loaded: connection "-1"
      meter: d.meter || null,
      clearPending: !!d.clearPending,
      validation: null,
      dom: null,
      editor: null
    };
  }

  // ---------------------------------------------------------------- persistence
  let persistTimer = 0;
  let quotaWarned = false;
  function snapshot(lean) {
    return {
      v: 1, name: nb.name, metadata: nb.metadata, kernel: nb.kernel, sessionId: nb.sessionId,
      lastIdleCpu: nb.lastIdleCpu, seen: seenOrder.slice(-400),
      cells: nb.cells.map(c => ({
        id: c.id, type: c.type, source: c.editor ? c.editor.value : c.source,
        outputs: lean ? c.outputs.map(leanOutput) : c.outputs, count: c.count,
        metadata: c.metadata, attachments: c.attachments, msgId: c.msgId, inputCount: c.inputCount, running: c.running,
        meter: c.meter, clearPending: c.clearPending
      }))
    };
  }
  function leanOutput(o) {
    if (!o.data) return o.output_type === 'stream' && o.text.length > 65536
      ? Object.assign({}, o, { text: '[… earlier output not kept …]\n' + o.text.slice(-65536) }) : o;
    const data = {};
    for (const [k, v] of Object.entries(o.data)) if (k === 'text/plain' || joinText(v).length < 65536) data[k] = v;
    if (!Object.keys(data).length) data['text/plain'] = '[output too large to keep in this browser]';
    return Object.assign({}, o, { data });
  }
  function persistNow() {
    clearTimeout(persistTimer);
    persistTimer = 0;
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(snapshot(false)));
    } catch (e) {
      try {
        localStorage.setItem(STORE_KEY, JSON.stringify(snapshot(true)));
        if (!quotaWarned) {
          quotaWarned = true;
          notice('info', 'This notebook\'s outputs are too large for the browser\'s storage: large images and HTML outputs will not be restored after a reload. Save the notebook as .ipynb to keep them.', { id: 'quota' });
        }
      } catch (e2) { /* storage unavailable: the page still works, without restore */ }
    }
  }
  // While a cell runs, at most every 2 s (the page saves at once when it goes away anyway).
  function persistSoon() { if (!persistTimer) persistTimer = setTimeout(persistNow, anyRunning() ? 2000 : 500); }
  function loadSaved() {
    try {
      const s = JSON.parse(localStorage.getItem(STORE_KEY) || 'null');
      return s && s.v === 1 && Array.isArray(s.cells) ? s : null;
    } catch (e) { return null; }
  }

  // ---------------------------------------------------------------- notices & announcements
  function notice(kind, text, opts) {
    opts = opts || {};
    const box = $('#notices');
    if (opts.id) { const old = box.querySelector(`[data-id="${opts.id}"]`); if (old) old.remove(); }
    const n = el('div', { class: `notice notice-${kind}`, role: kind === 'info' ? 'status' : 'alert', 'data-id': opts.id || null },
      el('span', { class: 'notice-text', text }));
    for (const a of opts.actions || []) {
      n.append(el('button', { type: 'button', class: 'btn btn-small', text: a.label, onclick: () => { n.remove(); a.fn(); } }));
    }
    const close = iconButton('close', 'Dismiss this notice', () => n.remove());
    close.classList.add('notice-close');
    n.append(close);
    box.append(n);
    return n;
  }
  function clearNotice(id) { const n = $(`#notices [data-id="${id}"]`); if (n) n.remove(); }
  let announceTimer = 0;
  function announce(text) {
    const a = $('#announcer');
    a.textContent = '';
    clearTimeout(announceTimer);
    announceTimer = setTimeout(() => { a.textContent = text; }, 50);
  }

  // ---------------------------------------------------------------- profiles
  function specOf(name) { return specs && specs.kernelspecs && specs.kernelspecs[name]; }
  function sandcellMeta(name) {
    const s = specOf(name);
    return (s && s.spec && s.spec.metadata && s.spec.metadata.sandcell) || null;
  }
  function profileOf(name) {
    const m = sandcellMeta(name);
    if (m && m.profile) return m.profile;
    const r = /^sandcell-(\w+)$/.exec(name || '');
    return r ? r[1] : 'moderate';
  }
  function displayName(name) {
    const s = specOf(name);
    return (s && s.spec && s.spec.display_name) || name;
  }
  function populateProfiles() {
    const sel = $('#profile');
    sel.textContent = '';
    const names = Object.keys((specs && specs.kernelspecs) || {}).sort((a, b) => {
      const order = n => (n === specs.default ? 0 : ['strict', 'moderate', 'permissive', 'custom'].indexOf(profileOf(n)) + 1);
      return order(a) - order(b) || a.localeCompare(b);
    });
    for (const n of names) {
      const m = sandcellMeta(n);
      const label = `${profileOf(n)}${n === specs.default ? ' (default)' : ''}` +
                    (m && m.available === false ? ' – unavailable here' : '');
      sel.append(el('option', { value: n, text: label, disabled: m && m.available === false }));
    }
    showProfile();
  }
  function showProfile() {
    const sel = $('#profile');
    const name = nb.kernel ? nb.kernel.name : (specs && specs.default);
    if (name && [...sel.options].some(o => o.value === name)) sel.value = name;
    const m = sandcellMeta(name);
    const info = [];
    if (m && m.limits) {
      if (m.limits.memory) info.push(fmtBytes(m.limits.memory) + ' memory');
      if (m.limits.wall_time) info.push(fmtLimitSeconds(m.limits.wall_time) + ' per run');
      info.push(m.network ? 'network on' : 'no network');
    }
    $('#profile-info').textContent = info.join(' · ');
    $('#profile-info').title = name ? `Kernel: ${displayName(name)}` : '';
    document.body.dataset.profile = name ? profileOf(name) : '';
  }

  // ---------------------------------------------------------------- kernel status
  function anyRunning() { return nb.cells.some(c => c.running); }
  function statusText() {
    if (authFailed) return 'disconnected';
    if (conn === 'reconnecting') return 'reconnecting';
    if (conn === 'disconnected') return 'disconnected';
    if (conn === 'starting' || conn === 'connecting') return 'starting';
    if (kstate === 'dead') return 'dead';
    if (kstate === 'starting' || kstate === 'restarting') return 'starting';
    if (kstate === 'busy' || anyRunning()) return 'busy';
    return 'idle';
  }
  let shownStatus = null;
  function updateStatus() {
    const st = statusText();
    if (st === shownStatus) return;
    shownStatus = st;
    const box = $('#kernel-status');
    box.dataset.state = st;
    box.querySelector('.status-text').textContent = 'Kernel ' + st;
    document.body.dataset.kernelState = st;
  }

  // ---------------------------------------------------------------- kernel lifecycle
  async function startKernel(name) {
    conn = 'starting';
    kstate = 'starting';
    updateStatus();
    client.close();
    let model;
    try {
      model = await client.api('POST', 'api/kernels', name ? { name } : {});
    } catch (e) {
      conn = 'disconnected';
      nb.kernel = null;
      nb.wantedName = name;
      updateStatus();
      notice('error', `Could not start a kernel: ${e.message}`, {
        id: 'kernel-start', actions: [{ label: 'Try again', fn: () => startKernel(name) }]
      });
      return false;
    }
    clearNotice('kernel-start');
    nb.kernel = { id: model.id, name: model.name || name };
    nb.sessionId = S.kernel.uuid();
    nb.lastIdleCpu = null;
    kstate = model.execution_state || 'idle';
    showProfile();
    persistNow();
    conn = 'connecting';
    updateStatus();
    client.useKernel(nb.kernel.id, nb.sessionId);
    return true;
  }

  function stopRunning(reason) {
    for (const c of nb.cells) {
      if (!c.running) continue;
      c.running = false;
      c.clearPending = false;
      if (c.meter) c.meter.stopped = reason;
      markDirty(c);
    }
    updateStatus();
  }

  async function kernelGone() {
    const name = nb.kernel ? nb.kernel.name : nb.wantedName || (specs && specs.default);
    stopRunning('kernel-gone');
    notice('warning', `The kernel this notebook was using no longer exists (the gateway may have been restarted). ` +
      `A new kernel with the ${profileOf(name)} profile was started: the outputs on the page are kept, ` +
      `but variables and imports are gone, so run the cells again.`, { id: 'kernel-gone' });
    announce('The kernel was replaced by a new one');
    await startKernel(name);
  }

  function onConnection(state, detail) {
    conn = state;
    if (state === 'connected') {
      clearNotice('connection');
      const gen = ++connGen;
      const infoId = client.send('shell', 'kernel_info_request', {});
      const info = new Promise(resolve => replyWaiters.set(infoId, resolve));
      const model = client.api('GET', `api/kernels/${encodeURIComponent(nb.kernel.id)}`).catch(() => null);
      Promise.all([info, model]).then(([reply, m]) => {
        kernelInfo = reply && reply.content;
        if (m && m.execution_state === 'idle' && gen === connGen) {
          // The kernel was idle when we connected and everything the gateway had buffered came
          // before this reply: a cell of an earlier connection still waiting will hear nothing.
          for (const c of nb.cells) {
            if (c.running && c.gen < gen) {
              c.running = false;
              c.meter = Object.assign(c.meter || {}, { stopped: 'lost' });
              markDirty(c);
            }
          }
          if (kstate === 'busy' && !anyRunning()) kstate = 'idle';
          updateStatus();
        }
      });
      if (kstate === 'starting' || kstate === 'restarting') kstate = 'idle';
      model.then(m => {
        if (!m) return;
        const u = m.sandcell_usage;
        if (u && typeof u.cpu_time === 'number' && m.execution_state === 'idle' && !anyRunning()) nb.lastIdleCpu = u.cpu_time;
        if (m.execution_state && !anyRunning()) { kstate = m.execution_state; updateStatus(); }
      });
      if (anyRunning()) startTicking();
    } else if (state === 'disconnected') {
      if (detail && detail.auth) authFailedNow();
      else notice('warning', 'The connection to the gateway is lost; the page keeps trying to reconnect.', {
        id: 'connection', actions: [{ label: 'Reconnect now', fn: () => client.retryNow() }]
      });
    }
    updateStatus();
  }

  function authFailedNow() {
    if (authFailed) return;
    authFailed = true;
    client.close();
    updateStatus();
    notice('error', 'The gateway did not accept this page\'s token. Open the address that sandcell printed when it started (it ends in ?token=…).', { id: 'auth' });
  }

  // ---------------------------------------------------------------- messages from the kernel
  function kernelTime(msg) {
    const t = Date.parse(msg.header && msg.header.date);
    return isNaN(t) ? Date.now() - (skew || 0) : t;
  }
  function nowKernel() { return Date.now() - (skew || 0); }
  function cellByMsg(id) { return id ? nb.cells.find(c => c.msgId === id) || null : null; }

  function onMessage(msg) {
    const header = msg.header || {};
    if (header.msg_id) {
      if (seen.has(header.msg_id)) return;
      remember(header.msg_id);
    }
    const t = Date.parse(header.date);
    if (!isNaN(t)) { const d = Date.now() - t; if (skew === null || d < skew) skew = d; }
    const type = header.msg_type;
    const parentId = msg.parent_header && msg.parent_header.msg_id;
    const cell = cellByMsg(parentId);
    const c = msg.content || {};
    if (msg.channel === 'iopub') {
      if (type === 'status') { onStatus(c.execution_state, cell, msg); return; }
      if (!cell) {
        if (type === 'stream' && c.name === 'stderr' && !parentId) notice('info', 'Gateway: ' + c.text.trim(), {});
        return;
      }
      switch (type) {
        case 'stream': appendStream(cell, c.name, c.text || ''); break;
        case 'display_data':
          addOutput(cell, { output_type: 'display_data', data: c.data || {}, metadata: c.metadata || {} },
                    c.transient && c.transient.display_id);
          break;
        case 'execute_result':
          addOutput(cell, { output_type: 'execute_result', execution_count: c.execution_count ?? null,
                            data: c.data || {}, metadata: c.metadata || {} }, c.transient && c.transient.display_id);
          break;
        case 'error':
          addOutput(cell, { output_type: 'error', ename: String(c.ename || 'Error'), evalue: String(c.evalue || ''),
                            traceback: Array.isArray(c.traceback) ? c.traceback.map(String) : [] });
          cell.failed = c.ename;
          break;
        case 'update_display_data': updateDisplay(c); break;
        case 'clear_output':
          if (c.wait) cell.clearPending = true;
          else { cell.outputs = []; cell.clearPending = false; markDirty(cell); }
          break;
        case 'execute_input':
          // The count is in the reply too, but a reply can be lost across a reload: keep this one.
          if (typeof c.execution_count === 'number') { cell.inputCount = c.execution_count; persistSoon(); }
          break;
        default: break; // comm messages: nothing to show
      }
    } else if (msg.channel === 'shell') {
      const w = replyWaiters.get(parentId);
      if (w) { replyWaiters.delete(parentId); w(msg); }
      if (type === 'execute_reply' && cell) {
        cell.count = c.status === 'aborted' ? null : (c.execution_count ?? cell.count);
        if (c.status === 'aborted') cell.aborted = true;
        markDirty(cell);
        persistSoon();
      }
    } else if (msg.channel === 'stdin') {
      if (type === 'input_request' && cell) showInput(cell, msg);
    }
  }

  function onStatus(state, cell, msg) {
    if (!state) return;
    if (cell && cell.running) {
      if (state === 'busy') {
        cell.meter = Object.assign(cell.meter || {}, { start: kernelTime(msg) });
        if (cell.meter.cpu0 === undefined || cell.meter.cpu0 === null) cell.meter.cpu0 = nb.lastIdleCpu;
        startTicking();
        markDirty(cell);
      } else if (state === 'idle') {
        finishCell(cell, kernelTime(msg));
      }
    }
    if (state === 'restarting') {
      notice('warning', 'The kernel stopped unexpectedly and is being restarted; its variables are gone.', { id: 'kernel-restart' });
      announce('The kernel died and is restarting');
      stopRunning('restart');
    } else if (state === 'dead') {
      stopRunning('dead');
      notice('error', 'The kernel is dead and will not be restarted automatically.', {
        id: 'kernel-dead', actions: [{ label: 'Start a new kernel', fn: () => replaceKernel() }]
      });
      announce('The kernel is dead');
    } else if (state === 'idle' || state === 'busy') {
      clearNotice('kernel-dead');
    }
    kstate = state;
    updateStatus();
  }

  async function replaceKernel() {
    const old = nb.kernel;
    client.close();
    if (old) client.api('DELETE', `api/kernels/${encodeURIComponent(old.id)}`).catch(() => {});
    await startKernel(old ? old.name : specs && specs.default);
  }

  function finishCell(cell, endTime) {
    cell.running = false;
    if (cell.count === null && !cell.aborted && typeof cell.inputCount === 'number') cell.count = cell.inputCount;
    cell.clearPending = false;
    if (cell.meter) cell.meter.end = endTime;
    const box = cell.dom && cell.dom.stdin;
    if (box) box.textContent = '';
    markDirty(cell);
    persistSoon();
    const n = nb.cells.indexOf(cell) + 1;
    announce(cell.failed ? `Cell ${n} failed: ${cell.failed}` : cell.aborted ? `Cell ${n} was not run` : `Cell ${n} finished`);
    if (!anyRunning()) finalUsage(cell);
    updateStatus();
  }

  // ---------------------------------------------------------------- outputs
  function addOutput(cell, out, displayId) {
    if (cell.clearPending) { cell.outputs = []; cell.clearPending = false; }
    out._v = 1;
    if (displayId) out._display_id = displayId;
    cell.outputs.push(out);
    markDirty(cell);
  }

  // Appends a chunk to a stream's text. Only the last line can be changed by '\r' or '\b', so
  // only it is reworked; the rest is appended as is (and then drawn by appending, see below).
  function appendStream(cell, name, text) {
    if (cell.clearPending) { cell.outputs = []; cell.clearPending = false; }
    name = name === 'stderr' ? 'stderr' : 'stdout';
    let o = cell.outputs[cell.outputs.length - 1];
    if (!o || o.output_type !== 'stream' || o.name !== name) {
      o = { output_type: 'stream', name, text: '', _v: 1 };
      cell.outputs.push(o);
    }
    if (/[\r\b]/.test(text) || o.text.endsWith('\r')) {
      const cut = o.text.lastIndexOf('\n') + 1;
      o.text = o.text.slice(0, cut) + S.ansi.fixCarriageReturns(o.text.slice(cut) + text);
      o._v = (o._v || 0) + 1; // the last line changed: draw it again
    } else {
      o.text += text; // same _v: the element appends the new text
    }
    if (o.text.length > 2 * MAX_STREAM) {
      const from = o.text.indexOf('\n', o.text.length - MAX_STREAM);
      o.text = '[… earlier output not shown …]\n' + o.text.slice(from < 0 ? o.text.length - MAX_STREAM : from + 1);
      o._v = (o._v || 0) + 1;
    }
    markDirty(cell);
  }

  function updateDisplay(c) {
    const id = c.transient && c.transient.display_id;
    if (!id) return;
    for (const cell of nb.cells) {
      for (const o of cell.outputs) {
        if (o._display_id === id) {
          o.data = c.data || {};
          o.metadata = c.metadata || {};
          o._v = (o._v || 0) + 1;
          markDirty(cell);
        }
      }
    }
  }

  function renderOutput(out) {
    const t = out.output_type;
    if (t === 'stream') {
      const pre = el('pre', { class: `output output-stream output-${out.name}` });
      drawStream(pre, out.text.replace(/\r$/, ''));
      return pre;
    }
    if (t === 'error') {
      const box = el('div', { class: 'output output-error', role: 'group', 'aria-label': `Error: ${out.ename}` });
      const pre = el('pre');
      const tb = out.traceback && out.traceback.length ? out.traceback : [`${out.ename}: ${out.evalue}`];
      S.ansi.appendTraceback(pre, tb, out.ename);
      box.append(pre);
      return box;
    }
    const box = el('div', { class: `output output-display output-${t}` });
    box.append(renderMime(out.data || {}, out.metadata || {}));
    return box;
  }

  // A stream is drawn in blocks of at most STREAM_BLOCK lines: text that arrives is added to
  // the last block only, so the browser lays out that block again, not the whole output (a
  // single block of 100 000 lines made every chunk cost a full layout). A block boundary
  // stands for one newline, so a block's final newline is held back until more text comes.
  const STREAM_BLOCK = 200;
  function drawStream(pre, text) {
    if (pre._nl) { text = '\n' + text; pre._nl = false; }
    if (!pre._ansi) pre._ansi = S.ansi.blankState();
    while (text) {
      let block = pre.lastChild;
      if (!block || (block._lines >= STREAM_BLOCK && text[0] === '\n')) {
        if (block) text = text.slice(1);
        block = pre.appendChild(document.createElement('div'));
        block._lines = 0;
        continue;
      }
      let piece = text, idx = -1;
      for (let k = block._lines; k < STREAM_BLOCK; k++) {
        idx = text.indexOf('\n', idx + 1);
        if (idx < 0) break;
      }
      if (idx >= 0) piece = text.slice(0, idx); // the block is full after this
      text = idx >= 0 ? text.slice(idx) : '';
      if (!text && piece.endsWith('\n')) { piece = piece.slice(0, -1); pre._nl = true; }
      pre._ansi = S.ansi.appendAnsi(block, piece, pre._ansi);
      block._lines = idx >= 0 ? STREAM_BLOCK : block._lines + (piece.match(/\n/g) || []).length;
    }
  }

  function renderMime(data, metadata) {
    const mime = MIME_ORDER.find(m => data[m] !== undefined) ||
                 Object.keys(data).find(m => /^image\/(png|jpeg|gif|webp)$/.test(m));
    if (!mime) {
      const kinds = Object.keys(data).join(', ') || 'nothing';
      return el('pre', { class: 'mime-plain muted', text: `[output of a type this page cannot show: ${kinds}]` });
    }
    const value = data[mime];
    const md = (metadata && metadata[mime]) || {};
    if (mime === 'text/html') return htmlFrame(joinText(value));
    if (mime === 'image/svg+xml') {
      return image('data:image/svg+xml;charset=utf-8,' + encodeURIComponent(joinText(value)), data, md);
    }
    if (mime.startsWith('image/')) {
      return image(`data:${mime};base64,` + joinText(value).replace(/\s+/g, ''), data, md);
    }
    if (mime === 'text/markdown') return S.markdown.render(joinText(value));
    if (mime === 'application/json') {
      return el('pre', { class: 'mime-plain', text: typeof value === 'string' ? value : JSON.stringify(value, null, 2) });
    }
    const pre = el('pre', { class: 'mime-plain' });
    S.ansi.appendAnsi(pre, joinText(value));
    return pre;
  }

  function image(src, data, md) {
    const alt = data['text/plain'] ? joinText(data['text/plain']) : 'Image output';
    const img = el('img', { class: 'mime-image', src, alt });
    if (md.width) img.width = md.width;
    if (md.height) img.height = md.height;
    return img;
  }

  function htmlFrame(html) {
    const f = el('iframe', {
      class: 'output-html', sandbox: 'allow-same-origin', referrerpolicy: 'no-referrer',
      title: 'HTML output', tabindex: '0'
    });
    f.srcdoc = '<!DOCTYPE html><html><head><meta charset="utf-8">' +
      `<meta http-equiv="Content-Security-Policy" content="${FRAME_CSP}">` +
      `<meta name="referrer" content="no-referrer"><style>${FRAME_CSS}</style></head><body>${html}</body></html>`;
    f.addEventListener('load', () => { sizeFrame(f); setTimeout(() => sizeFrame(f), 150); });
    return f;
  }

  function sizeFrame(f) {
    let doc = null;
    try { doc = f.contentDocument; } catch (e) { doc = null; }
    if (!doc || !doc.documentElement) { f.style.height = '320px'; return; }
    const h = Math.ceil(doc.documentElement.getBoundingClientRect().height);
    f.style.height = Math.min(Math.max(h, 20), 3000) + 'px';
    f.dataset.sized = '1';
  }
  window.addEventListener('resize', () => {
    clearTimeout(sizeFrame.timer);
    sizeFrame.timer = setTimeout(() => document.querySelectorAll('iframe.output-html').forEach(sizeFrame), 150);
  });

  // ---------------------------------------------------------------- stdin
  function showInput(cell, msg) {
    const box = cell.dom.stdin;
    box.textContent = '';
    const c = msg.content || {};
    const id = 'stdin-' + cell.id;
    const input = el('input', { id, type: c.password ? 'password' : 'text', class: 'stdin-input', autocomplete: 'off', spellcheck: 'false' });
    const form = el('form', { class: 'stdin-form' },
      el('label', { for: id, class: 'stdin-prompt', text: c.prompt || 'Input:' }),
      input,
      el('button', { type: 'submit', class: 'btn btn-small', text: 'Send' }));
    form.addEventListener('submit', e => {
      e.preventDefault();
      const value = input.value;
      client.send('stdin', 'input_reply', { value }, msg.header);
      box.textContent = '';
      appendStream(cell, 'stdout', (c.prompt || '') + (c.password ? '········' : value) + '\n');
      cell.editor.focus();
    });
    box.append(form);
    input.focus();
    announce(`Cell ${nb.cells.indexOf(cell) + 1} asks for input: ${c.prompt || ''}`);
  }

  // ---------------------------------------------------------------- resource meter
  let tickTimer = 0, tickCount = 0, polling = false;
  function startTicking() {
    if (tickTimer) return;
    tickCount = 0;
    tickTimer = setInterval(tick, 250);
    pollUsage();
  }
  function tick() {
    const running = nb.cells.filter(c => c.running);
    if (!running.length) { clearInterval(tickTimer); tickTimer = 0; return; }
    for (const c of running) renderMeter(c);
    if (++tickCount % 4 === 0) pollUsage();
  }
  function executingCell() {
    return nb.cells.find(c => c.running && c.meter && c.meter.start && !c.meter.end) || null;
  }
  async function pollUsage(finished) {
    if (!nb.kernel || polling || conn !== 'connected') return;
    polling = true;
    let m = null;
    try { m = await client.api('GET', `api/kernels/${encodeURIComponent(nb.kernel.id)}`); } catch (e) { m = null; }
    polling = false;
    const u = m && m.sandcell_usage;
    if (!u) return;
    const cell = finished || executingCell();
    if (cell && cell.meter) {
      const mt = cell.meter;
      if (typeof u.memory_bytes === 'number') {
        mt.mem = u.memory_bytes;
        mt.peak = Math.max(mt.peak || 0, u.memory_bytes);
      }
      if (u.memory_limit_bytes) mt.limit = u.memory_limit_bytes;
      // The limit counts what runs add to the interpreter's size when it became ready.
      if (typeof u.memory_base_bytes === 'number') mt.base = u.memory_base_bytes;
      if (typeof u.cpu_time === 'number') {
        if (mt.cpu0 === null || mt.cpu0 === undefined) mt.cpu0 = u.cpu_time;
        mt.cpu = Math.max(0, u.cpu_time - mt.cpu0);
      }
      markDirty(cell);
    }
    if (typeof u.cpu_time === 'number' && !anyRunning()) nb.lastIdleCpu = u.cpu_time;
  }
  function finalUsage(cell) { pollUsage(cell); }

  function renderMeter(cell) {
    const box = cell.dom && cell.dom.meter;
    if (!box) return;
    const mt = cell.meter;
    if (!mt || (!cell.running && (mt.stopped || !mt.start || !mt.end))) {
      if (mt && mt.stopped === 'lost' && !cell.running) {
        box.hidden = false;
        box.className = 'meter meter-note';
        box.textContent = 'This run\'s end was not received: its output may be incomplete.';
      } else box.hidden = true;
      return;
    }
    const limit = mt.limit || (sandcellMeta(nb.kernel && nb.kernel.name) || { limits: {} }).limits.memory;
    const parts = [];
    if (cell.running && !mt.start) {
      box.hidden = false;
      box.className = 'meter meter-queued';
      box.textContent = 'Queued: waiting for the kernel';
      return;
    }
    const elapsed = ((cell.running ? nowKernel() : mt.end) - mt.start) / 1000;
    if (!cell.running && elapsed < 1) { box.hidden = true; return; }
    box.hidden = false;
    box.className = 'meter' + (cell.running ? ' meter-running' : '');
    box.textContent = '';
    parts.push(el('span', { class: 'meter-item' }, el('span', { class: 'meter-label', text: cell.running ? 'Elapsed ' : 'Ran for ' }), fmtSeconds(elapsed)));
    if (mt.cpu !== undefined) parts.push(el('span', { class: 'meter-item' }, el('span', { class: 'meter-label', text: 'CPU ' }), fmtSeconds(mt.cpu)));
    const mem = cell.running ? mt.mem : mt.peak;
    if (mem !== undefined) {
      // With the kernel's start-up size known, the bar shows what the limit counts: the growth.
      const base = typeof mt.base === 'number' && mt.base > 0 ? mt.base : null;
      const counted = base !== null ? Math.max(0, mem - base) : mem;
      const item = el('span', { class: 'meter-item' },
        el('span', { class: 'meter-label', text: cell.running ? 'Memory ' : 'Peak memory ' }),
        fmtBytes(mem) + (limit ? (base !== null ? ` (+${fmtBytes(counted)} of ${fmtBytes(limit)})`
                                                : ` of ${fmtBytes(limit)}`) : ''));
      if (limit && base !== null)
        item.title = `The memory limit (${fmtBytes(limit)}) counts what the code adds to the ` +
          `${fmtBytes(base)} the kernel started with.`;
      if (limit) {
        const frac = Math.min(1, counted / limit);
        const bar = el('span', { class: 'meter-bar' + (frac > 0.8 ? ' meter-bar-high' : ''), 'aria-hidden': 'true' }, el('span'));
        bar.firstChild.style.width = (frac * 100).toFixed(1) + '%';
        item.append(bar);
      }
      parts.push(item);
    } else if (cell.running) {
      parts.push(el('span', { class: 'meter-item muted', text: 'Memory …' }));
    }
    if (cell.running) box.append(el('span', { class: 'spinner', 'aria-hidden': 'true' }));
    box.append(...parts);
  }

  // ---------------------------------------------------------------- rendering
  const dirty = new Set();
  let frame = 0, frameTimer = 0;
  function markDirty(cell) {
    dirty.add(cell);
    if (!frame) {
      frame = requestAnimationFrame(flush);
      frameTimer = setTimeout(flush, 250); // hidden tabs get no animation frames
    }
    persistSoon();
  }
  function flush() {
    cancelAnimationFrame(frame);
    clearTimeout(frameTimer);
    frame = 0;
    for (const c of dirty) if (c.dom) renderCell(c);
    dirty.clear();
    updateStatus();
  }

  function renderCell(cell) {
    const d = cell.dom;
    if (cell.type === 'code') {
      d.prompt.textContent = cell.running ? '[*]:' : `[${cell.count ?? ' '}]:`;
      d.prompt.setAttribute('aria-label', cell.running ? 'Running' : cell.count ? `Execution count ${cell.count}` : 'Not run');
      d.root.classList.toggle('running', cell.running);
    }
    renderMeter(cell);
    const box = d.outputs;
    cell.outputs.forEach((out, i) => {
      const cur = box.children[i];
      if (cur && cur._out === out && cur._v === out._v) {
        if (out.output_type === 'stream' && cur._len !== out.text.length) {
          // text was appended: draw only what is new
          drawStream(cur, out.text.slice(cur._len).replace(/\r$/, ''));
          cur._len = out.text.length;
        }
        return;
      }
      const fresh = renderOutput(out);
      fresh._out = out;
      fresh._v = out._v;
      if (out.output_type === 'stream') fresh._len = out.text.length;
      if (cur) box.replaceChild(fresh, cur); else box.append(fresh);
    });
    while (box.children.length > cell.outputs.length) box.lastChild.remove();
    d.outputs.hidden = !cell.outputs.length;
  }

  function buildCell(cell) {
    const root = el('section', { class: `cell cell-${cell.type}`, role: 'group', 'data-cell-id': cell.id });
    const prompt = el('div', { class: 'prompt' });
    const main = el('div', { class: 'cell-main' });
    const tools = el('div', { class: 'cell-tools' });
    const dom = cell.dom = { root, prompt, main, tools };
    if (cell.type === 'code') {
      cell.editor = new S.Editor({
        value: cell.source,
        label: 'Code',
        describedBy: 'shortcuts',
        onChange: v => {
          cell.source = v;
          if (cell.validation && !cell.validation.stale) { cell.validation.stale = true; cell.editor.setMarkers([]); renderValidation(cell); }
          persistSoon();
        },
        onKeyDown: (e, ed) => editorKey(cell, e, ed)
      });
      cell.editor.textarea.addEventListener('focus', () => selectCell(cell));
      tools.append(
        iconButton('run', 'Run cell', () => runCell(cell), { class: 'icon-btn btn-run', 'data-label': 'Run cell #' }),
        iconButton('validate', 'Validate cell', () => validateCell(cell), { class: 'icon-btn btn-validate', 'data-label': 'Validate cell #' }));
      dom.validation = el('div', { class: 'validation', hidden: true });
      dom.meter = el('div', { class: 'meter', hidden: true });
      dom.stdin = el('div', { class: 'stdin' });
      main.append(cell.editor.el, tools, dom.validation, dom.meter, dom.stdin);
    } else {
      const body = cell.type === 'markdown' ? S.markdown.render(cell.source) : el('pre', { class: 'raw-cell', text: cell.source });
      body.classList.add('static-cell');
      main.append(el('div', { class: 'static-label', text: cell.type === 'markdown' ? 'Markdown (read-only)' : 'Raw (read-only)' }), body, tools);
      prompt.textContent = '';
    }
    tools.append(
      iconButton('add', 'Insert a cell below', () => insertCell(nb.cells.indexOf(cell) + 1, true), { class: 'icon-btn btn-insert', 'data-label': 'Insert a cell below cell #' }),
      iconButton('up', 'Move cell up', ev => moveCell(cell, -1, ev.currentTarget), { class: 'icon-btn btn-up', 'data-label': 'Move cell # up' }),
      iconButton('down', 'Move cell down', ev => moveCell(cell, 1, ev.currentTarget), { class: 'icon-btn btn-down', 'data-label': 'Move cell # down' }),
      iconButton('del', 'Delete cell', () => deleteCell(cell), { class: 'icon-btn btn-delete', 'data-label': 'Delete cell #' }));
    dom.outputs = el('div', { class: 'outputs', role: 'group', 'aria-label': 'Output' });
    main.append(dom.outputs);
    root.append(prompt, main);
    root.addEventListener('focusin', () => selectCell(cell));
    renderCell(cell);
    return root;
  }

  function selectCell(cell) {
    if (lastFocusedCell === cell) return;
    if (lastFocusedCell && lastFocusedCell.dom) lastFocusedCell.dom.root.classList.remove('selected');
    lastFocusedCell = cell;
    cell.dom.root.classList.add('selected');
  }

  function relabel() {
    nb.cells.forEach((c, i) => {
      const n = i + 1;
      c.dom.root.setAttribute('aria-label', `Cell ${n}`);
      if (c.editor) c.editor.setLabel(`Code of cell ${n}`);
      for (const b of c.dom.tools.querySelectorAll('button[data-label]')) {
        b.setAttribute('aria-label', b.dataset.label.replace('#', n));
      }
      c.dom.tools.querySelector('.btn-up').disabled = i === 0;
      c.dom.tools.querySelector('.btn-down').disabled = i === nb.cells.length - 1;
    });
  }

  function renderAll() {
    const box = $('#cells');
    box.textContent = '';
    for (const c of nb.cells) box.append(c.dom ? c.dom.root : buildCell(c));
    relabel();
  }

  // ---------------------------------------------------------------- cell actions
  function insertCell(index, focus, source) {
    const cell = makeCell({ source: source || '' });
    nb.cells.splice(index, 0, cell);
    const root = buildCell(cell);
    const box = $('#cells');
    box.insertBefore(root, box.children[index] || null);
    relabel();
    persistSoon();
    if (focus) cell.editor.focus('start');
    return cell;
  }

  function deleteCell(cell) {
    const i = nb.cells.indexOf(cell);
    if (i < 0) return;
    nb.cells.splice(i, 1);
    cell.dom.root.remove();
    if (lastFocusedCell === cell) lastFocusedCell = null;
    if (!nb.cells.length) insertCell(0, false);
    relabel();
    persistSoon();
    const next = nb.cells[Math.min(i, nb.cells.length - 1)];
    (next.editor ? next.editor.textarea : next.dom.tools.querySelector('.btn-delete')).focus();
    announce(`Cell ${i + 1} deleted`);
    updateStatus();
  }

  function moveCell(cell, delta, focusAfter) {
    const i = nb.cells.indexOf(cell), j = i + delta;
    if (i < 0 || j < 0 || j >= nb.cells.length) return;
    const active = focusAfter || document.activeElement;
    nb.cells.splice(i, 1);
    nb.cells.splice(j, 0, cell);
    const box = $('#cells');
    box.insertBefore(cell.dom.root, delta < 0 ? nb.cells[j + 1].dom.root : (nb.cells[j + 1] ? nb.cells[j + 1].dom.root : null));
    relabel();
    persistSoon();
    if (active && cell.dom.root.contains(active)) {
      if (active.disabled) (cell.editor ? cell.editor.textarea : cell.dom.tools.querySelector('.btn-delete')).focus();
      else active.focus();
    }
    announce(`Cell moved to position ${j + 1}`);
  }

  function runCell(cell) {
    if (cell.type !== 'code') return;
    const code = cell.editor.value;
    cell.source = code;
    cell.outputs = [];
    cell.clearPending = false;
    cell.failed = null;
    cell.aborted = false;
    cell.count = null;
    cell.inputCount = null;
    cell.meter = null;
    if (cell.dom.stdin) cell.dom.stdin.textContent = '';
    if (!code.trim()) { cell.running = false; cell.msgId = null; markDirty(cell); return; }
    if (!nb.kernel || authFailed) {
      notice('warning', 'There is no kernel to run this cell yet.', { id: 'no-kernel' });
      return;
    }
    cell.msgId = client.send('shell', 'execute_request', {
      code, silent: false, store_history: true, user_expressions: {}, allow_stdin: true, stop_on_error: true
    });
    cell.gen = client.connected ? connGen : connGen + 1;
    cell.running = true;
    cell.meter = { cpu0: anyRunningExcept(cell) ? null : nb.lastIdleCpu };
    markDirty(cell);
    updateStatus();
    startTicking();
  }
  function anyRunningExcept(cell) { return nb.cells.some(c => c !== cell && c.running); }

  function focusCell(cell, where) {
    if (cell.editor) cell.editor.focus(where);
    else cell.dom.tools.querySelector('button:not([disabled])').focus();
    cell.dom.root.scrollIntoView({ block: 'nearest' });
  }

  function nextCodeCell(cell, create) {
    const i = nb.cells.indexOf(cell);
    for (let j = i + 1; j < nb.cells.length; j++) if (nb.cells[j].type === 'code') return nb.cells[j];
    return create ? insertCell(nb.cells.length, false) : null;
  }

  function editorKey(cell, e, ed) {
    const mod = e.ctrlKey || e.metaKey;
    if (e.key === 'Enter' && e.shiftKey && !mod && !e.altKey) {
      runCell(cell);
      focusCell(nextCodeCell(cell, true), 'start');
      return true;
    }
    if (e.key === 'Enter' && mod && !e.shiftKey && !e.altKey) { runCell(cell); return true; }
    if (e.key === 'Enter' && e.altKey && !mod && !e.shiftKey) {
      runCell(cell);
      insertCell(nb.cells.indexOf(cell) + 1, true);
      return true;
    }
    if ((e.key === 'ArrowUp' || e.key === 'ArrowDown') && e.altKey && !mod && !e.shiftKey) {
      moveCell(cell, e.key === 'ArrowUp' ? -1 : 1, ed.textarea);
      return true;
    }
    if (mod && !e.altKey && (e.key === 's' || e.key === 'S')) { saveNotebook(); return true; }
    const ta = ed.textarea;
    if (!e.altKey && !mod && !e.shiftKey && ta.selectionStart === ta.selectionEnd) {
      const i = nb.cells.indexOf(cell);
      if (e.key === 'ArrowUp' && ed.lineOfCaret() === 1 && i > 0) {
        for (let j = i - 1; j >= 0; j--) if (nb.cells[j].editor) { focusCell(nb.cells[j], 'end'); return true; }
      }
      if (e.key === 'ArrowDown' && ed.lineOfCaret() === ed.lineCount()) {
        const next = nextCodeCell(cell, false);
        if (next) { focusCell(next, 'start'); return true; }
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- toolbar actions
  function confirmDialog(title, text, okLabel) {
    const dlg = $('#confirm');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = okLabel || 'OK';
    const back = document.activeElement;
    return new Promise(resolve => {
      dlg.returnValue = '';
      dlg.addEventListener('close', () => {
        resolve(dlg.returnValue === 'ok');
        if (back && back.isConnected) back.focus();
      }, { once: true });
      dlg.showModal();
      $('#confirm-ok').focus();
    });
  }

  async function interrupt() {
    if (!nb.kernel) return;
    try {
      await client.api('POST', `api/kernels/${encodeURIComponent(nb.kernel.id)}/interrupt`);
      announce('Interrupt sent');
    } catch (e) {
      if (e.status === 404) kernelGone();
      else notice('error', `Could not interrupt the kernel: ${e.message}`, { id: 'interrupt' });
    }
  }

  async function restart(clear) {
    if (!nb.kernel) return;
    const ok = await confirmDialog(clear ? 'Restart the kernel and clear all outputs?' : 'Restart the kernel?',
      'Every variable and import of this notebook is lost; a running cell is stopped.', clear ? 'Restart and clear' : 'Restart');
    if (!ok) return;
    kstate = 'restarting';
    updateStatus();
    try {
      await client.api('POST', `api/kernels/${encodeURIComponent(nb.kernel.id)}/restart`);
    } catch (e) {
      if (e.status === 404) { kernelGone(); return; }
      notice('error', `Could not restart the kernel: ${e.message}`, { id: 'restart' });
      kstate = 'idle';
      updateStatus();
      return;
    }
    stopRunning('restart');
    nb.lastIdleCpu = null;
    if (clear) clearAllOutputs();
    kstate = 'idle';
    clearNotice('kernel-restart');
    updateStatus();
    announce('Kernel restarted');
  }

  function clearAllOutputs() {
    for (const c of nb.cells) {
      if (c.type !== 'code') continue;
      c.outputs = [];
      c.count = null;
      c.meter = null;
      markDirty(c);
    }
  }

  // replaceKernel keeps the old kernel's name; a profile change wants the selected one.
  async function replaceKernelWith(name) {
    const old = nb.kernel;
    client.close();
    if (old) await client.api('DELETE', `api/kernels/${encodeURIComponent(old.id)}`).catch(() => {});
    await startKernel(name);
  }

  // ---------------------------------------------------------------- validation
  async function validateCell(cell) {
    const code = cell.editor.value;
    const level = profileOf(nb.kernel ? nb.kernel.name : specs && specs.default);
    cell.validation = { pending: true };
    renderValidation(cell);
    let result;
    try {
      const task = { type: 'validate', code };
      if (['strict', 'moderate', 'permissive', 'custom'].includes(level)) task.security_level = level;
      result = await client.api('POST', 'python/validate', { task });
    } catch (e) {
      cell.validation = { error: e.message };
      renderValidation(cell);
      return;
    }
    cell.validation = { result, source: code };
    const markers = [];
    for (const s of result.syntax_errors || []) markers.push({ line: s.line, severity: 'error', message: `Syntax error: ${s.message}` });
    for (const w of result.security_warnings || []) {
      markers.push({ line: w.line, severity: w.severity === 'low' ? 'info' : 'warning', message: `${w.message} (${w.severity}, ${w.category})` });
    }
    for (const m of result.import_issues || []) markers.push({ line: m.line, severity: 'error', message: m.message });
    cell.editor.setMarkers(markers);
    renderValidation(cell);
    const n = (result.syntax_errors || []).length + (result.security_warnings || []).length + (result.import_issues || []).length;
    announce(n ? `Validation found ${n} problem${n > 1 ? 's' : ''}` : 'Validation found no problems');
  }

  function renderValidation(cell) {
    const box = cell.dom.validation;
    const v = cell.validation;
    box.textContent = '';
    if (!v) { box.hidden = true; return; }
    box.hidden = false;
    box.setAttribute('role', 'region');
    box.setAttribute('aria-label', `Validation of cell ${nb.cells.indexOf(cell) + 1}`);
    const close = iconButton('close', 'Close the validation results', () => {
      cell.validation = null;
      cell.editor.setMarkers([]);
      renderValidation(cell);
      cell.editor.focus();
    });
    close.classList.add('validation-close');
    if (v.pending) { box.append(el('div', { class: 'validation-head', text: 'Validating…' })); return; }
    if (v.error) { box.append(el('div', { class: 'validation-head bad', text: `Validation failed: ${v.error}` }), close); return; }
    const r = v.result;
    const items = [];
    for (const s of r.syntax_errors || []) items.push({ line: s.line, col: s.column, sev: 'error', tag: 'syntax error', text: s.message });
    for (const m of r.import_issues || []) items.push({ line: m.line, sev: 'error', tag: m.reason === 'not_installed' ? 'not installed' : 'import blocked', text: m.message });
    for (const w of r.security_warnings || []) items.push({ line: w.line, col: w.column, sev: w.severity === 'low' ? 'info' : 'warning', tag: `${w.severity} · ${w.category}`, text: w.message });
    items.sort((a, b) => (a.line || 0) - (b.line || 0));
    const ok = !items.length;
    const head = el('div', { class: 'validation-head ' + (ok ? 'good' : r.is_valid ? 'warn' : 'bad') },
      ok ? `No problems found under the ${r.security_level || ''} profile.`
         : `${items.length} finding${items.length > 1 ? 's' : ''} under the ${r.security_level || ''} profile` +
           (r.is_valid ? ' (the code is valid)' : ' (the code would not run as is)'));
    box.append(head, close);
    if (v.stale) box.append(el('p', { class: 'validation-stale', text: 'The code has changed since: validate again to update these results.' }));
    if (items.length) {
      const ul = el('ul', { class: 'validation-list' });
      for (const it of items) {
        const lineBtn = it.line ? el('button', { type: 'button', class: 'lineref', text: `Line ${it.line}`,
          onclick: () => cell.editor.focus(it.line), 'aria-label': `Go to line ${it.line}` }) : null;
        ul.append(el('li', { class: `finding finding-${it.sev}`, 'data-line': it.line || '' },
          lineBtn, el('span', { class: 'finding-tag', text: it.tag }), el('span', { class: 'finding-text', text: it.text })));
      }
      box.append(ul);
    }
    if ((r.recommendations || []).length && !ok) {
      const rec = el('ul', { class: 'validation-recs' });
      for (const t of r.recommendations) rec.append(el('li', { text: t }));
      box.append(el('div', { class: 'validation-recs-title', text: 'Recommendations' }), rec);
    }
  }

  // ---------------------------------------------------------------- .ipynb
  function splitLines(text) { return text === '' ? [] : text.split(/(?<=\n)/); }
  function exportOutput(o) {
    const data = {};
    for (const [k, v] of Object.entries(o.data || {})) {
      data[k] = (typeof v === 'string' && !/^image\/(png|jpeg|gif|webp)$/.test(k) && k !== 'application/json') ? splitLines(v) : v;
    }
    switch (o.output_type) {
      case 'stream': return { output_type: 'stream', name: o.name, text: splitLines(o.text.replace(/\r$/, '')) };
      case 'error': return { output_type: 'error', ename: o.ename, evalue: o.evalue, traceback: o.traceback || [] };
      case 'execute_result': return { output_type: 'execute_result', execution_count: o.execution_count ?? null, data, metadata: o.metadata || {} };
      default: return { output_type: 'display_data', data, metadata: o.metadata || {} };
    }
  }
  function toIpynb() {
    const name = nb.kernel ? nb.kernel.name : (specs && specs.default) || 'sandcell';
    const li = (kernelInfo && kernelInfo.language_info) || { name: 'python' };
    return {
      cells: nb.cells.map(c => {
        const cell = { id: c.id, cell_type: c.type, metadata: c.metadata || {}, source: splitLines(c.editor ? c.editor.value : c.source) };
        if (c.type === 'code') {
          cell.execution_count = c.count ?? null;
          cell.outputs = c.outputs.map(exportOutput);
        } else if (c.attachments) cell.attachments = c.attachments;
        return cell;
      }),
      metadata: Object.assign({}, nb.metadata, {
        kernelspec: { name, display_name: displayName(name), language: 'python' },
        language_info: li
      }),
      nbformat: 4,
      nbformat_minor: 5
    };
  }
  function saveNotebook() {
    let name = ($('#nb-name').value || 'Untitled').trim().replace(/[\\/:*?"<>|]+/g, '_');
    if (!/\.ipynb$/i.test(name)) name += '.ipynb';
    const blob = new Blob([JSON.stringify(toIpynb(), null, 1) + '\n'], { type: 'application/x-ipynb+json' });
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    announce(`Saved ${name}`);
  }
  function importOutput(o) {
    if (!o || typeof o !== 'object') return null;
    const data = {};
    for (const [k, v] of Object.entries(o.data || {})) data[k] = k === 'application/json' ? v : joinText(v);
    switch (o.output_type) {
      case 'stream': return { output_type: 'stream', name: o.name === 'stderr' ? 'stderr' : 'stdout', text: joinText(o.text), _v: 1 };
      case 'error': return { output_type: 'error', ename: String(o.ename || 'Error'), evalue: String(o.evalue || ''), traceback: (o.traceback || []).map(String), _v: 1 };
      case 'execute_result': return { output_type: 'execute_result', execution_count: o.execution_count ?? null, data, metadata: o.metadata || {}, _v: 1 };
      case 'display_data': return { output_type: 'display_data', data, metadata: o.metadata || {}, _v: 1 };
      default: return null;
    }
  }
  function openNotebook(text, fileName) {
    let doc;
    try { doc = JSON.parse(text); } catch (e) {
      notice('error', `${fileName} is not a notebook: ${e.message}`, { id: 'open' });
      return;
    }
    if (!doc || doc.nbformat !== 4 || !Array.isArray(doc.cells)) {
      notice('error', `${fileName} is not an nbformat 4 notebook (nbformat ${doc && doc.nbformat}); open it in Jupyter and save it again to convert it.`, { id: 'open' });
      return;
    }
    clearNotice('open');
    for (const c of nb.cells) if (c.running) c.running = false;
    const ids = new Set();
    nb.cells = doc.cells.map(c => {
      const cell = makeCell({
        id: c.id, type: c.cell_type, source: c.source, metadata: c.metadata, attachments: c.attachments,
        count: c.execution_count, outputs: (c.outputs || []).map(importOutput).filter(Boolean)
      });
      while (ids.has(cell.id)) cell.id = newCellId();
      ids.add(cell.id);
      return cell;
    });
    if (!nb.cells.length) nb.cells.push(makeCell({}));
    nb.metadata = doc.metadata && typeof doc.metadata === 'object' ? doc.metadata : {};
    delete nb.metadata.kernelspec;
    delete nb.metadata.language_info;
    nb.name = fileName;
    $('#nb-name').value = fileName;
    showTitle();
    lastFocusedCell = null;
    renderAll();
    persistNow();
    updateStatus();
    announce(`Opened ${fileName}: ${nb.cells.length} cells`);
    const first = nb.cells.find(c => c.editor) || nb.cells[0];
    focusCell(first, 'start');
  }

  function showTitle() { document.title = `${nb.name || 'Untitled'} – sandcell`; }

  // ---------------------------------------------------------------- start
  function wireToolbar() {
    const addBelow = () => {
      const i = lastFocusedCell ? nb.cells.indexOf(lastFocusedCell) + 1 : nb.cells.length;
      insertCell(i > 0 ? i : nb.cells.length, true);
    };
    $('#btn-add').addEventListener('click', addBelow);
    $('#btn-add-end').addEventListener('click', () => insertCell(nb.cells.length, true));
    $('#btn-run-all').addEventListener('click', () => { for (const c of nb.cells) if (c.type === 'code') runCell(c); });
    $('#btn-interrupt').addEventListener('click', interrupt);
    $('#btn-restart').addEventListener('click', () => restart(false));
    $('#btn-restart-clear').addEventListener('click', () => restart(true));
    $('#btn-clear').addEventListener('click', clearAllOutputs);
    $('#btn-save').addEventListener('click', saveNotebook);
    $('#btn-open').addEventListener('click', () => $('#file-input').click());
    $('#file-input').addEventListener('change', async ev => {
      const f = ev.target.files && ev.target.files[0];
      ev.target.value = '';
      if (!f) return;
      const text = await f.text();
      const hasWork = nb.cells.some(c => (c.editor ? c.editor.value : c.source).trim() || c.outputs.length);
      if (hasWork && !await confirmDialog(`Open ${f.name}?`,
        'It replaces the cells on this page (save them first with "Save .ipynb" to keep them). The kernel and its variables stay.', 'Open')) return;
      openNotebook(text, f.name);
    });
    $('#profile').addEventListener('change', changeProfileSelected);
    $('#nb-name').addEventListener('change', ev => { nb.name = ev.target.value; showTitle(); persistSoon(); });
    document.addEventListener('keydown', e => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && (e.key === 's' || e.key === 'S')) { e.preventDefault(); saveNotebook(); }
    });
    window.addEventListener('pagehide', () => { client.close(); persistNow(); });
  }
  async function changeProfileSelected() {
    const sel = $('#profile');
    const name = sel.value;
    if (!nb.kernel) { await startKernel(name); return; } // none running (its start failed)
    if (name === nb.kernel.name) return;
    const ok = await confirmDialog(`Switch to the ${profileOf(name)} profile?`,
      `A new kernel (${displayName(name)}) starts and the current one is shut down: variables and imports are lost; the outputs stay on the page.`,
      'Switch profile');
    if (!ok) { sel.value = nb.kernel.name; return; }
    stopRunning('profile');
    await replaceKernelWith(name);
    if (nb.kernel && nb.kernel.name === name) announce(`Switched to the ${profileOf(name)} profile`);
  }

  async function boot() {
    const token = takeToken();
    client = new S.kernel.KernelClient(token, {
      onMessage, onConnection, onKernelGone: kernelGone, onAuthFailed: authFailedNow
    });
    const saved = loadSaved();
    if (saved) {
      nb.name = saved.name || nb.name;
      nb.metadata = saved.metadata || {};
      nb.kernel = saved.kernel || null;
      nb.sessionId = saved.sessionId || null;
      nb.lastIdleCpu = saved.lastIdleCpu ?? null;
      nb.cells = saved.cells.map(makeCell);
      for (const id of saved.seen || []) remember(id);
    }
    if (!nb.cells.length) nb.cells.push(makeCell({}));
    $('#nb-name').value = nb.name;
    showTitle();
    renderAll();
    wireToolbar();
    updateStatus();
    try {
      specs = await client.api('GET', 'api/kernelspecs');
    } catch (e) {
      if (!authFailed) {
        conn = 'disconnected';
        updateStatus();
        notice('error', `Cannot reach the gateway: ${e.message}`, { id: 'connection', actions: [{ label: 'Reload', fn: () => location.reload() }] });
      }
      return;
    }
    populateProfiles();
    if (nb.kernel) {
      try {
        const m = await client.api('GET', `api/kernels/${encodeURIComponent(nb.kernel.id)}`);
        kstate = m.execution_state || 'idle';
        conn = 'connecting';
        updateStatus();
        client.useKernel(nb.kernel.id, nb.sessionId || (nb.sessionId = S.kernel.uuid()));
      } catch (e) {
        if (e.status === 404) await kernelGone();
        else if (!authFailed) {
          conn = 'connecting';
          client.kernelId = nb.kernel.id;
          client.sessionId = nb.sessionId || S.kernel.uuid();
          client.wanted = true;
          client.scheduleReconnect();
        }
      }
    } else {
      await startKernel(specs.default);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
