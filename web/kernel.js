// sandcell notebook: talking to the gateway.
//  - REST (Jupyter Server's API) with `Authorization: token T` on every request; every URL is
//    relative to the page, so a gateway under a base URL (/sandcell/) works unchanged.
//  - The kernel's channels WebSocket, in the `v1.kernel.websocket.jupyter.org` framing:
//    one binary frame per message = uint64 LE count n, then n uint64 LE offsets (the start
//    of each part, then the end of the last), then the parts: channel (UTF-8), header,
//    parent_header, metadata, content (JSON, UTF-8), and any binary buffers. Should a server
//    not agree to that subprotocol, the legacy framing (one JSON text frame per message, with
//    a `channel` key) is used instead.
//  - Reconnection: when the socket closes without being asked to, the client checks that the
//    kernel still exists and reconnects with growing delays (0.5 s doubling up to 10 s, with
//    jitter); the gateway replays, first and in order, whatever it buffered while no client
//    was connected. A kernel that no longer exists (404) is reported to the page, which
//    starts a new one.
'use strict';
(function (ns) {
  const V1 = 'v1.kernel.websocket.jupyter.org';
  const utf8 = new TextEncoder();
  const fromUtf8 = new TextDecoder();

  function uuid() {
    // crypto.randomUUID needs a secure context; getRandomValues does not.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function encodeV1(msg) {
    const parts = [msg.channel, JSON.stringify(msg.header), JSON.stringify(msg.parent_header || {}),
                   JSON.stringify(msg.metadata || {}), JSON.stringify(msg.content || {})].map(s => utf8.encode(s));
    const n = parts.length + 1; // offsets: the start of each part, then the end
    const headLen = 8 * (n + 1);
    let total = headLen;
    for (const p of parts) total += p.length;
    const buf = new Uint8Array(total);
    const dv = new DataView(buf.buffer);
    dv.setBigUint64(0, BigInt(n), true);
    let off = headLen;
    parts.forEach((p, i) => {
      dv.setBigUint64(8 * (i + 1), BigInt(off), true);
      buf.set(p, off);
      off += p.length;
    });
    dv.setBigUint64(8 * n, BigInt(off), true);
    return buf.buffer;
  }

  function decodeV1(data) {
    const dv = new DataView(data);
    const n = Number(dv.getBigUint64(0, true));
    if (n < 6 || 8 * (n + 1) > data.byteLength) throw new Error('bad v1 frame');
    const offs = [];
    for (let i = 0; i < n; i++) offs.push(Number(dv.getBigUint64(8 * (i + 1), true)));
    const part = i => new Uint8Array(data, offs[i], offs[i + 1] - offs[i]);
    const json = i => JSON.parse(fromUtf8.decode(part(i)) || '{}');
    const buffers = [];
    for (let i = 5; i < n - 1; i++) buffers.push(new DataView(data, offs[i], offs[i + 1] - offs[i]));
    return {
      channel: fromUtf8.decode(part(0)),
      header: json(1), parent_header: json(2), metadata: json(3), content: json(4), buffers
    };
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  class KernelClient {
    // hooks: onMessage(msg), onConnection(state: 'connecting'|'connected'|'reconnecting'|
    //        'disconnected', detail), onKernelGone(), onAuthFailed()
    constructor(token, hooks) {
      this.token = token;
      this.hooks = hooks;
      this.kernelId = null;
      this.sessionId = uuid();
      this.ws = null;
      this.framing = 'v1';
      this.outbox = [];
      this.attempts = 0;
      this.timer = null;
      this.wanted = false; // a connection is wanted (false after close())
      window.addEventListener('online', () => { if (this.wanted && !this.ws) this.retryNow(); });
    }

    async api(method, path, body) {
      const headers = {};
      if (this.token) headers.Authorization = 'token ' + this.token;
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store', credentials: 'same-origin'
      });
      const text = await res.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
      if (!res.ok) {
        if (res.status === 401 || res.status === 403) this.hooks.onAuthFailed && this.hooks.onAuthFailed();
        throw new ApiError(res.status, (data && data.message) || `${method} ${path}: HTTP ${res.status}`);
      }
      return data;
    }

    useKernel(id, sessionId) {
      this.close();
      this.kernelId = id;
      if (sessionId) this.sessionId = sessionId;
      this.wanted = true;
      this.attempts = 0;
      this.open();
    }

    wsUrl() {
      const u = new URL(`api/kernels/${encodeURIComponent(this.kernelId)}/channels`, document.baseURI);
      u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
      u.searchParams.set('session_id', this.sessionId);
      if (this.token) u.searchParams.set('token', this.token);
      return u.href;
    }

    open() {
      clearTimeout(this.timer);
      this.hooks.onConnection(this.attempts ? 'reconnecting' : 'connecting', { attempt: this.attempts });
      let ws;
      try {
        ws = new WebSocket(this.wsUrl(), [V1]);
      } catch (e) {
        this.scheduleReconnect();
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      ws.onopen = () => {
        if (this.ws !== ws) return;
        this.framing = ws.protocol === V1 ? 'v1' : 'legacy';
        this.attempts = 0;
        this.hooks.onConnection('connected', {});
        const queued = this.outbox;
        this.outbox = [];
        for (const m of queued) this.transmit(m);
      };
      ws.onmessage = ev => {
        if (this.ws !== ws) return;
        let msg;
        try {
          if (typeof ev.data === 'string') msg = JSON.parse(ev.data);
          else if (this.framing === 'v1') msg = decodeV1(ev.data);
          else return; // legacy binary frames carry buffers we do not use
        } catch (e) {
          console.warn('sandcell: undecodable message', e);
          return;
        }
        this.hooks.onMessage(msg);
      };
      ws.onclose = ev => {
        if (this.ws !== ws) return;
        this.ws = null;
        if (!this.wanted) return;
        console.info('sandcell: channels closed', ev.code, ev.reason);
        this.scheduleReconnect();
      };
    }

    scheduleReconnect() {
      clearTimeout(this.timer);
      this.attempts++;
      const delay = Math.min(10000, 500 * 2 ** (this.attempts - 1)) * (0.8 + 0.4 * Math.random());
      this.hooks.onConnection(this.attempts > 6 ? 'disconnected' : 'reconnecting',
                              { attempt: this.attempts, delay });
      this.timer = setTimeout(() => this.reconnect(), delay);
    }

    retryNow() {
      clearTimeout(this.timer);
      this.reconnect();
    }

    async reconnect() {
      if (!this.wanted || this.ws) return;
      const id = this.kernelId;
      try {
        await this.api('GET', `api/kernels/${encodeURIComponent(id)}`);
      } catch (e) {
        if (id !== this.kernelId || !this.wanted) return;
        if (e.status === 404) {
          this.wanted = false;
          this.hooks.onKernelGone();
          return;
        }
        if (e.status === 401 || e.status === 403) {
          this.wanted = false;
          this.hooks.onConnection('disconnected', { auth: true });
          return;
        }
        this.scheduleReconnect(); // network down or gateway away: try again later
        return;
      }
      if (id === this.kernelId && this.wanted && !this.ws) this.open();
    }

    close() {
      this.wanted = false;
      clearTimeout(this.timer);
      this.outbox = [];
      if (this.ws) {
        const ws = this.ws;
        this.ws = null;
        try { ws.close(1000, 'page closed the connection'); } catch (e) { /* already closed */ }
      }
    }

    get connected() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

    transmit(msg) {
      if (this.framing === 'v1') this.ws.send(encodeV1(msg));
      else this.ws.send(JSON.stringify({ ...msg, buffers: [] }));
    }

    // Sends a message (queued until the socket is open); returns its msg_id.
    send(channel, msgType, content, parentHeader, metadata) {
      const msg = {
        channel,
        header: {
          msg_id: uuid(), msg_type: msgType, username: 'notebook', session: this.sessionId,
          date: new Date().toISOString(), version: '5.3'
        },
        parent_header: parentHeader || {},
        metadata: metadata || {},
        content: content || {}
      };
      if (this.connected) this.transmit(msg);
      else this.outbox.push(msg);
      return msg.header.msg_id;
    }
  }

  ns.kernel = { KernelClient, ApiError, uuid, encodeV1, decodeV1 };
})(window.Sandcell = window.Sandcell || {});
