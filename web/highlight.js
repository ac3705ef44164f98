// sandcell notebook: a small Python syntax highlighter.
// highlightLines(source) -> one HTML string per line (escaped text in <span class="tok-...">),
// so that tokens that span lines (triple-quoted strings) are split at each line break.
'use strict';
(function (ns) {
  const KEYWORDS = new Set(('and as assert async await break class continue def del elif else except ' +
    'finally for from global if import in is lambda nonlocal not or pass raise return try while ' +
    'with yield match case').split(' '));
  const CONSTANTS = new Set(['True', 'False', 'None', 'Ellipsis', 'NotImplemented', '__debug__']);
  const BUILTINS = new Set(('abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable ' +
    'chr classmethod compile complex delattr dict dir divmod enumerate eval exec filter float format ' +
    'frozenset getattr globals hasattr hash help hex id input int isinstance issubclass iter len list ' +
    'locals map max memoryview min next object oct open ord pow print property range repr reversed ' +
    'round set setattr slice sorted staticmethod str sum super tuple type vars zip __import__ ' +
    'BaseException Exception ArithmeticError AssertionError AttributeError EOFError ImportError ' +
    'ModuleNotFoundError IndexError KeyError KeyboardInterrupt LookupError MemoryError NameError ' +
    'NotImplementedError OSError OverflowError RecursionError RuntimeError StopIteration SyntaxError ' +
    'SystemExit TypeError ValueError ZeroDivisionError FileNotFoundError PermissionError TimeoutError ' +
    'UnicodeError Warning UserWarning DeprecationWarning').split(' '));

  // One alternation, tried at each position (sticky). Group order = token kind.
  const TOKEN = new RegExp([
    /(#[^\n]*)/.source,                                                        // 1 comment
    /((?:[rRbBuUfF]{1,2})?(?:'''[\s\S]*?(?:'''|$)|"""[\s\S]*?(?:"""|$)))/.source, // 2 long string
    /((?:[rRbBuUfF]{1,2})?(?:'(?:[^'\\\n]|\\[\s\S])*(?:'|(?=\n)|$)|"(?:[^"\\\n]|\\[\s\S])*(?:"|(?=\n)|$)))/.source, // 3 string
    /((?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?[jJ]?)(?![\w.]))/.source, // 4 number
    /([\p{L}_][\p{L}\p{N}_]*)/.source,                                          // 5 name
    /(@)/.source,                                                             // 6 decorator start
    /(\s+)/.source,                                                           // 7 space
    /([^\s\w])/.source                                                        // 8 punctuation
  ].join('|'), 'uy');

  function esc(s) {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }

  function tokenize(src) {
    const toks = [];
    let pos = 0, prevName = '', lineStart = true;
    while (pos < src.length) {
      TOKEN.lastIndex = pos;
      const m = TOKEN.exec(src);
      if (!m) { toks.push([null, src[pos]]); pos++; continue; }
      const text = m[0];
      let kind = null;
      if (m[1] !== undefined) kind = 'comment';
      else if (m[2] !== undefined || m[3] !== undefined) kind = 'string';
      else if (m[4] !== undefined) kind = 'number';
      else if (m[5] !== undefined) {
        if (prevName === 'def' || prevName === 'class') kind = 'defname';
        else if (KEYWORDS.has(text)) kind = 'keyword';
        else if (CONSTANTS.has(text)) kind = 'constant';
        else if (text === 'self' || text === 'cls') kind = 'self';
        else if (BUILTINS.has(text)) kind = 'builtin';
      } else if (m[6] !== undefined && lineStart) {
        // A decorator: '@' and the dotted name after it.
        const d = /@[\p{L}_][\p{L}\p{N}_.]*/uy;
        d.lastIndex = pos;
        const dm = d.exec(src);
        if (dm) {
          toks.push(['decorator', dm[0]]);
          pos += dm[0].length;
          prevName = '';
          lineStart = false;
          continue;
        }
      } else if (m[8] !== undefined) kind = 'op';
      toks.push([kind, text]);
      pos += text.length;
      if (m[7] === undefined) {
        prevName = m[5] !== undefined ? text : '';
        lineStart = false;
      }
      if (text.indexOf('\n') >= 0 && m[7] !== undefined) lineStart = true;
      else if (text.indexOf('\n') >= 0) lineStart = false;
    }
    return toks;
  }

  function highlightLines(src) {
    const lines = [''];
    for (const [kind, text] of tokenize(src)) {
      const parts = text.split('\n');
      parts.forEach((part, i) => {
        if (i) lines.push('');
        if (!part) return;
        lines[lines.length - 1] += kind ? `<span class="tok-${kind}">${esc(part)}</span>` : esc(part);
      });
    }
    return lines;
  }

  ns.highlight = { highlightLines, escapeHtml: esc };
})(window.Sandcell = window.Sandcell || {});
