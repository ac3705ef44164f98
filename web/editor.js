// sandcell notebook: the code editor of a cell.
// A <textarea> (transparent text, visible caret: it does the editing, selection, clipboard,
// undo and accessibility) lies exactly over a <pre> that shows the same text highlighted, one
// block per line with its number in a gutter. Both wrap long lines the same way (same font,
// width and white-space rules), so the gutter numbers stay on their lines. The height grows
// with the text: the <pre> sizes a one-cell grid and the textarea fills it.
'use strict';
(function (ns) {
  const INDENT = '    ';

  // Inserts text at the selection through the browser's editing command, so that undo works;
  // falls back to setRangeText where that command is not available.
  function insertText(ta, text) {
    ta.focus();
    let ok = false;
    try {
      ok = text === '' ? document.execCommand('delete', false) : document.execCommand('insertText', false, text);
    } catch (e) { ok = false; }
    if (!ok) {
      ta.setRangeText(text, ta.selectionStart, ta.selectionEnd, 'end');
      ta.dispatchEvent(new Event('input', { bubbles: true }));
    }
  }

  class Editor {
    // opts: {value, label, describedBy, onChange(value), onKeyDown(event, editor) -> true if handled}
    constructor(opts) {
      this.opts = opts;
      this.markers = new Map(); // line (1-based) -> {severity, messages[]}
      this.tabReleased = false; // Escape was pressed: the next Tab moves focus out
      const root = this.el = document.createElement('div');
      root.className = 'editor';
      const pre = this.pre = document.createElement('pre');
      pre.className = 'editor-view';
      pre.setAttribute('aria-hidden', 'true');
      const ta = this.textarea = document.createElement('textarea');
      ta.className = 'editor-input';
      ta.spellcheck = false;
      ta.rows = 1;
      ta.wrap = 'soft';
      for (const [k, v] of [['autocapitalize', 'off'], ['autocomplete', 'off'], ['autocorrect', 'off'],
                            ['aria-label', opts.label || 'Code'], ['aria-multiline', 'true']]) {
        ta.setAttribute(k, v);
      }
      if (opts.describedBy) ta.setAttribute('aria-describedby', opts.describedBy);
      ta.value = opts.value || '';
      root.append(pre, ta);
      ta.addEventListener('input', () => {
        this.render();
        if (this.opts.onChange) this.opts.onChange(ta.value);
      });
      ta.addEventListener('keydown', e => this.onKeyDown(e));
      // Focus that arrives by Tab (not a click, not the page moving on after a run) starts with
      // Tab released, so that tabbing through the page does not get stuck in an editor; typing
      // anything makes Tab indent again.
      ta.addEventListener('mousedown', () => { this.pointer = true; });
      ta.addEventListener('focus', () => {
        this.setReleased(!this.focusing && !this.pointer);
        this.pointer = false;
      });
      ta.addEventListener('blur', () => this.setReleased(false));
      this.render();
    }

    get value() { return this.textarea.value; }
    set value(v) { this.textarea.value = v; this.render(); }

    setLabel(label) { this.textarea.setAttribute('aria-label', label); }

    setReleased(on) {
      this.tabReleased = on;
      this.el.classList.toggle('tab-released', on);
    }

    focus(where) {
      const ta = this.textarea;
      this.focusing = true;
      ta.focus({ preventScroll: false });
      this.focusing = false;
      if (where === 'start') ta.setSelectionRange(0, 0);
      else if (where === 'end') ta.setSelectionRange(ta.value.length, ta.value.length);
      else if (typeof where === 'number') {
        // a line number: caret at its first non-blank character
        const lines = ta.value.split('\n');
        let pos = 0;
        for (let i = 0; i < Math.min(where - 1, lines.length - 1); i++) pos += lines[i].length + 1;
        const indent = /^\s*/.exec(lines[Math.min(where, lines.length) - 1] || '')[0].length;
        ta.setSelectionRange(pos + indent, pos + indent);
      }
    }

    // markers: [{line, severity: 'error'|'warning'|'info', message}]
    setMarkers(list) {
      this.markers = new Map();
      for (const m of list || []) {
        if (!m.line) continue;
        const cur = this.markers.get(m.line) || { severity: 'info', messages: [] };
        const rank = { info: 0, warning: 1, error: 2 };
        if (rank[m.severity] > rank[cur.severity]) cur.severity = m.severity;
        cur.messages.push(m.message);
        this.markers.set(m.line, cur);
      }
      this.render();
    }

    render() {
      const lines = ns.highlight.highlightLines(this.textarea.value);
      const digits = String(lines.length).length;
      this.el.style.setProperty('--gutter-chars', String(Math.max(2, digits)));
      let html = '';
      lines.forEach((line, i) => {
        const n = i + 1;
        const mk = this.markers.get(n);
        const cls = mk ? ` class="ln marked marked-${mk.severity}"` : ' class="ln"';
        const title = mk ? ` title="${ns.highlight.escapeHtml(mk.messages.join('\n')).replace(/"/g, '&quot;')}"` : '';
        const note = mk ? `<span class="ln-note">${ns.highlight.escapeHtml(mk.messages[0])}</span>` : '';
        html += `<div${cls} data-line="${n}"${title}>${line || '\u200b'}${note}</div>`;
      });
      this.pre.innerHTML = html;
      if (this.markers.size) requestAnimationFrame(() => this.placeNotes());
    }

    // A marked line shows its message at its right end, where there is room: a note that would
    // cover code (a long or wrapped line) is hidden; the title and the list below keep it.
    placeNotes() {
      for (const note of this.pre.querySelectorAll('.ln-note')) {
        const line = note.parentNode;
        const range = document.createRange();
        range.setStart(line, 0);
        range.setEndBefore(note);
        const text = range.getBoundingClientRect();
        const lh = parseFloat(getComputedStyle(line).lineHeight) || 20;
        const n = note.getBoundingClientRect();
        note.classList.toggle('ln-note-hidden', text.height > lh * 1.5 || text.right + 24 > n.left);
      }
    }

    lineOfCaret() {
      const ta = this.textarea;
      return ta.value.slice(0, ta.selectionStart).split('\n').length;
    }

    lineCount() { return this.textarea.value.split('\n').length; }

    onKeyDown(e) {
      const ta = this.textarea;
      if (this.opts.onKeyDown && this.opts.onKeyDown(e, this)) { e.preventDefault(); return; }
      if (e.key === 'Escape') {
        // Lets keyboard users leave the editor: the next Tab moves focus instead of indenting.
        this.setReleased(true);
        return;
      }
      if (e.key === 'Tab' && !e.ctrlKey && !e.altKey && !e.metaKey) {
        if (this.tabReleased) return; // the browser moves the focus
        e.preventDefault();
        const start = ta.selectionStart, end = ta.selectionEnd;
        const v = ta.value;
        const multi = v.slice(start, end).indexOf('\n') >= 0;
        if (!e.shiftKey && !multi) { insertText(ta, INDENT); return; }
        // indent or dedent every selected line
        const ls = v.lastIndexOf('\n', start - 1) + 1;
        const block = v.slice(ls, end);
        const out = block.split('\n').map(l => {
          if (!e.shiftKey) return INDENT + l;
          const m = /^( {1,4}|\t)/.exec(l);
          return m ? l.slice(m[0].length) : l;
        }).join('\n');
        if (out === block) return;
        ta.setSelectionRange(ls, end);
        insertText(ta, out);
        ta.setSelectionRange(ls, ls + out.length);
        return;
      }
      if (!['Shift', 'Control', 'Alt', 'Meta'].includes(e.key)) this.setReleased(false);
      if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing) {
        // keep the indentation, and add a level after a line that ends with ':'
        e.preventDefault();
        const v = ta.value, start = ta.selectionStart;
        const ls = v.lastIndexOf('\n', start - 1) + 1;
        const before = v.slice(ls, start);
        let indent = /^[ \t]*/.exec(before)[0];
        if (/:\s*(#.*)?$/.test(before)) indent += INDENT;
        insertText(ta, '\n' + indent);
        return;
      }
      if (e.key === 'Backspace' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey &&
          ta.selectionStart === ta.selectionEnd) {
        // remove a whole indentation level in leading blanks
        const v = ta.value, start = ta.selectionStart;
        const ls = v.lastIndexOf('\n', start - 1) + 1;
        const before = v.slice(ls, start);
        if (before.length && /^ +$/.test(before)) {
          e.preventDefault();
          const n = ((before.length - 1) % 4) + 1;
          ta.setSelectionRange(start - n, start);
          insertText(ta, '');
        }
      }
    }
  }

  ns.Editor = Editor;
})(window.Sandcell = window.Sandcell || {});
