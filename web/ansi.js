// sandcell notebook: terminal text to DOM.
//  - ANSI SGR colour codes (ESC [ ... m) become <span class="ansi-...">; other escape sequences
//    are dropped.
//  - '\r' and '\b' in streams are applied the way a terminal would (a progress bar that
//    rewrites its line stays one line).
//  - Python tracebacks without colour codes (sandcell's kernel sends plain text) get colour
//    classes of their own: file, line, function, caret markers and the exception name.
// Everything is built with text nodes: no output text is ever parsed as HTML.
'use strict';
(function (ns) {
  // SGR state -> one span's classes and style.
  function blankState() {
    return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };
  }

  function color256(n) {
    if (n < 16) return n;
    if (n < 232) {
      n -= 16;
      const v = [0, 95, 135, 175, 215, 255];
      return `rgb(${v[Math.floor(n / 36)]}, ${v[Math.floor(n / 6) % 6]}, ${v[n % 6]})`;
    }
    const g = 8 + (n - 232) * 10;
    return `rgb(${g}, ${g}, ${g})`;
  }

  function applySgr(st, params) {
    const p = params.length ? params : [0];
    for (let i = 0; i < p.length; i++) {
      const c = p[i];
      if (c === 0) Object.assign(st, blankState());
      else if (c === 1) st.bold = true;
      else if (c === 2) st.dim = true;
      else if (c === 3) st.italic = true;
      else if (c === 4) st.underline = true;
      else if (c === 7) st.inverse = true;
      else if (c === 22) st.bold = st.dim = false;
      else if (c === 23) st.italic = false;
      else if (c === 24) st.underline = false;
      else if (c === 27) st.inverse = false;
      else if (c >= 30 && c <= 37) st.fg = c - 30;
      else if (c >= 90 && c <= 97) st.fg = c - 90 + 8;
      else if (c === 39) st.fg = null;
      else if (c >= 40 && c <= 47) st.bg = c - 40;
      else if (c >= 100 && c <= 107) st.bg = c - 100 + 8;
      else if (c === 49) st.bg = null;
      else if ((c === 38 || c === 48) && p[i + 1] === 5 && p[i + 2] !== undefined) {
        st[c === 38 ? 'fg' : 'bg'] = color256(p[i + 2] & 255);
        i += 2;
      } else if ((c === 38 || c === 48) && p[i + 1] === 2 && p[i + 4] !== undefined) {
        st[c === 38 ? 'fg' : 'bg'] = `rgb(${p[i + 2] & 255}, ${p[i + 3] & 255}, ${p[i + 4] & 255})`;
        i += 4;
      }
    }
  }

  function isPlain(st) {
    return st.fg === null && st.bg === null && !st.bold && !st.dim && !st.italic && !st.underline && !st.inverse;
  }

  function makeSpan(st, text) {
    const span = document.createElement('span');
    let fg = st.fg, bg = st.bg;
    if (st.inverse) {
      fg = bg === null ? 'inv-fg' : bg;
      bg = st.fg === null ? 'inv-bg' : st.fg;
    }
    const cls = [];
    if (typeof fg === 'number') cls.push('ansi-fg-' + fg);
    else if (fg === 'inv-fg') cls.push('ansi-fg-inverse');
    else if (fg) span.style.color = fg;
    if (typeof bg === 'number') cls.push('ansi-bg-' + bg);
    else if (bg === 'inv-bg') cls.push('ansi-bg-inverse');
    else if (bg) span.style.backgroundColor = bg;
    if (st.bold) cls.push('ansi-bold');
    if (st.dim) cls.push('ansi-dim');
    if (st.italic) cls.push('ansi-italic');
    if (st.underline) cls.push('ansi-underline');
    span.className = cls.join(' ');
    span.textContent = text;
    return span;
  }

  // Appends `text` (with ANSI codes) to `parent` as text nodes and spans. `state` carries the
  // colours from one call to the next (a stream drawn in pieces); it is returned.
  function appendAnsi(parent, text, state) {
    const st = state || blankState();
    // CSI sequences, OSC sequences (ESC ] ... BEL/ST) and lone two-byte escapes.
    const re = /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
    let last = 0, m;
    const flush = s => {
      if (!s) return;
      parent.appendChild(isPlain(st) ? document.createTextNode(s) : makeSpan(st, s));
    };
    while ((m = re.exec(text))) {
      flush(text.slice(last, m.index));
      last = re.lastIndex;
      if (m[2] === 'm') {
        const params = m[1] === '' ? [] : m[1].split(';').map(x => (x === '' ? 0 : parseInt(x, 10) || 0));
        applySgr(st, params);
      }
    }
    flush(text.slice(last));
    return st;
  }

  // Applies '\r' (back to the start of the line, later text overwrites) and '\b' (one back).
  // A '\r' at the very end is kept, so that the next chunk of the stream overwrites the line.
  function fixCarriageReturns(text) {
    if (text.indexOf('\r') < 0 && text.indexOf('\b') < 0) return text;
    text = text.replace(/\r+\n/g, '\n');
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i];
      if (line.indexOf('\b') >= 0) {
        let out = '';
        for (const ch of line) out = ch === '\b' ? out.slice(0, -1) : out + ch;
        line = out;
      }
      if (line.indexOf('\r') < 0) { lines[i] = line; continue; }
      const segs = line.split('\r');
      let buf = '';
      for (const seg of segs) buf = seg + buf.slice(seg.length);
      const pending = i === lines.length - 1 && line.endsWith('\r');
      lines[i] = buf + (pending ? '\r' : '');
    }
    return lines.join('\n');
  }

  // Plain-text traceback colouring (used when the traceback carries no ANSI codes).
  function span(cls, text) {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    return s;
  }

  function appendTraceback(parent, lines, ename) {
    const text = lines.join('\n');
    if (text.indexOf('\x1b[') >= 0) { appendAnsi(parent, text); return parent; }
    const all = text.split('\n');
    all.forEach((line, i) => {
      if (i) parent.appendChild(document.createTextNode('\n'));
      let m;
      if (/^(Traceback \(most recent call last\):|During handling of the above exception|The above exception was the direct cause)/.test(line)) {
        parent.appendChild(span('tb-head', line));
      } else if ((m = /^(\s*File )("[^"]*"|\S+)(, line )(\d+)(?:(, in )(.*))?$/.exec(line))) {
        parent.appendChild(document.createTextNode(m[1]));
        parent.appendChild(span('tb-file', m[2]));
        parent.appendChild(document.createTextNode(m[3]));
        parent.appendChild(span('tb-lineno', m[4]));
        if (m[5]) {
          parent.appendChild(document.createTextNode(m[5]));
          parent.appendChild(span('tb-func', m[6]));
        }
      } else if (/^\s*[\^~]+\s*$/.test(line) && /\S/.test(line)) {
        parent.appendChild(span('tb-caret', line));
      } else if ((m = /^([A-Za-z_][\w.]*)(: .*|:)?$/.exec(line)) &&
                 (m[1] === ename || /(Error|Exception|Interrupt|Exit|Warning|Died)$/.test(m[1]))) {
        parent.appendChild(span('tb-ename', m[1]));
        if (m[2]) parent.appendChild(span('tb-evalue', m[2]));
      } else {
        parent.appendChild(document.createTextNode(line));
      }
    });
    return parent;
  }

  ns.ansi = { appendAnsi, fixCarriageReturns, appendTraceback, blankState };
})(window.Sandcell = window.Sandcell || {});
