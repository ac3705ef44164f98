// sandcell notebook: a small Markdown renderer for the markdown cells of opened notebooks and
// text/markdown outputs. It builds DOM nodes from text (never parses HTML): headings,
// paragraphs, lists, block quotes, fenced and indented code, rules, and inline code,
// emphasis and links (http, https and mailto only). Raw HTML in the Markdown is shown as text.
'use strict';
(function (ns) {
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const INLINE = /(`+)([\s\S]*?)\1|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|(?<![\w])_([^_\s][^_]*)_(?![\w])|!?\[([^\]]*)\]\(([^)\s]+)(?:\s+"[^"]*")?\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;

  function inline(parent, text) {
    const re = new RegExp(INLINE.source, 'g'); // inline() recurses: each call has its own position
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      last = re.lastIndex;
      if (m[1]) parent.appendChild(el('code', null, m[2].trim()));
      else if (m[3] || m[4]) inline(parent.appendChild(el('strong')), m[3] || m[4]);
      else if (m[5] || m[6]) inline(parent.appendChild(el('em')), m[5] || m[6]);
      else if (m[7] !== undefined || m[8]) {
        const url = m[8];
        if (m[0][0] === '!') {
          // images: only inline data (an opened notebook cannot make the page fetch anything)
          if (/^data:image\/(png|jpeg|gif|webp);base64,/i.test(url)) {
            const img = el('img');
            img.src = url;
            img.alt = m[7];
            parent.appendChild(img);
          } else parent.appendChild(document.createTextNode(m[7] ? `[image: ${m[7]}]` : '[image]'));
        } else if (/^(https?:|mailto:)/i.test(url)) {
          const a = el('a');
          a.href = url;
          a.target = '_blank';
          a.rel = 'noopener noreferrer';
          inline(a, m[7] || url);
          parent.appendChild(a);
        } else inline(parent, m[7]);
      } else if (m[9]) {
        const a = el('a', null, m[9]);
        a.href = m[9];
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        parent.appendChild(a);
      }
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function render(src) {
    const root = el('div', 'markdown');
    const lines = src.replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (/^\s*$/.test(line)) { i++; continue; }
      if ((m = /^\s{0,3}(```|~~~)/.exec(line))) {
        const fence = m[1], code = [];
        i++;
        while (i < lines.length && !lines[i].trimStart().startsWith(fence)) code.push(lines[i++]);
        i++;
        root.appendChild(el('pre')).appendChild(el('code', null, code.join('\n')));
      } else if ((m = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line))) {
        inline(root.appendChild(el('h' + m[1].length)), m[2]);
        i++;
      } else if (/^\s{0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
        root.appendChild(el('hr'));
        i++;
      } else if (/^\s{0,3}>/.test(line)) {
        const q = [];
        while (i < lines.length && /^\s{0,3}>/.test(lines[i])) q.push(lines[i++].replace(/^\s{0,3}>\s?/, ''));
        const bq = el('blockquote');
        bq.appendChild(render(q.join('\n')));
        root.appendChild(bq);
      } else if (/^\s{0,3}([-*+]|\d+[.)])\s+/.test(line)) {
        const ordered = /^\s{0,3}\d/.test(line);
        const list = el(ordered ? 'ol' : 'ul');
        while (i < lines.length && /^\s{0,3}([-*+]|\d+[.)])\s+/.test(lines[i])) {
          let item = lines[i++].replace(/^\s{0,3}([-*+]|\d+[.)])\s+/, '');
          while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !/^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
            item += ' ' + lines[i++].trim();
          }
          inline(list.appendChild(el('li')), item);
        }
        root.appendChild(list);
      } else if (/^( {4}|\t)/.test(line)) {
        const code = [];
        while (i < lines.length && (/^( {4}|\t)/.test(lines[i]) || /^\s*$/.test(lines[i]))) {
          code.push(lines[i++].replace(/^( {4}|\t)/, ''));
        }
        root.appendChild(el('pre')).appendChild(el('code', null, code.join('\n').replace(/\n+$/, '')));
      } else {
        const para = [lines[i++].trim()];
        while (i < lines.length && !/^\s*$/.test(lines[i]) &&
               !/^\s{0,3}(#{1,6}\s|```|~~~|>|([-*+]|\d+[.)])\s+)/.test(lines[i])) para.push(lines[i++].trim());
        inline(root.appendChild(el('p')), para.join(' '));
      }
    }
    return root;
  }

  ns.markdown = { render };
})(window.Sandcell = window.Sandcell || {});
