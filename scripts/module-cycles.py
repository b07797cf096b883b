#!/usr/bin/env python3
"""Report import cycles between the modules of a Rust crate (standard library only).

    python3 scripts/module-cycles.py [src|filters/src] [--level file|top] [--dot] [-v]

Exit status 1 when a cycle exists, else 0. Nodes: the module tree walked from
lib.rs (else main.rs) through `mod x;` (`#[path]` honoured): proxy/ctx.rs is
`proxy::ctx`, proxy/mod.rs is `proxy`; the crate root is not a node; `--level
top` keeps the first segment only. Test-only and undeclared files are skipped.
Edges: A -> B when A's file names a path resolving (longest module prefix) to
B: `crate::`, `super::` (repeated), `self::`, or a path starting with a child
module of A (`ctx::Plan` in proxy/mod.rs), in `use` trees (nested braces) or
inline code, and serde path strings (`with = "super::x"`); `mod x;` is not an
edge, nor (without --containment) a module's reference to its own
submodules: a parent owning and re-exporting its children is containment; a
child using its parent, or a sibling, is an import. Comments, string/char literals and `#[cfg(test)]` items are ignored.
Output: each strongly connected component of >1 module with its two-module
cycles and a shortest cycle through every other module, one file:line per edge
(-v: all edges inside instead), then a summary. `--dot`: top-level graph as
Graphviz dot, cycles in red. Limits: textual, not the compiler; an alias
(`use crate::proxy as p; p::ctx::X`) counts as `proxy` only; macro-made paths
are unseen; a non-test inline `mod x { .. }` counts as its file.
"""
import argparse
import os
import re
import sys
from collections import deque

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = re.compile(r"""/\*|//[^\n]*|'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]*\}|.)|[^\\'\n])'|"|(?<!\w)[bc]?r(#*)\"""")
STRING_END = re.compile(r'(?:[^"\\]|\\.)*"', re.S)
CFG_TEST = re.compile(r'#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\](?:\s*#\s*\[[^\]]*\])*\s*'
                      r'(?:pub(?:\s*\([^)]*\))?\s+)?(?:(?:async|unsafe|const|extern)\s+)*'
                      r'(?:mod|use|fn|impl|struct|enum|type|trait|static|const)\b')
MOD_DECL = re.compile(r'((?:#\s*\[[^\]]*\]\s*)*)(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(?:r#)?(\w+)\s*;')
PATH_ATTR = re.compile(r'#\s*\[\s*path\s*=\s*"')
SERDE_PATH = re.compile(r'\b(?:default|with|serialize_with|deserialize_with|skip_serializing_if)'
                        r'\s*=\s*"([\w:]+)"')
PATH_START = re.compile(r'(?<![\w:])[A-Za-z_]\w*(?=\s*::)')
SEGMENT = re.compile(r'\s*(\{|\*|[A-Za-z_]\w*)')
SEP = re.compile(r'\s*::\s*')
GROUP_NEXT = re.compile(r'\s*(?:as\s+\w+\s*)?([,}])')


def blank(out, a, b):
    """Spaces over out[a:b], newlines kept (offsets and line numbers stay valid)."""
    out[a:b] = [c if c == '\n' else ' ' for c in out[a:b]]


def clean(src):
    """`src` with comments and the contents of string/char literals blanked."""
    out, i = list(src), 0
    while (m := TOKEN.search(src, i)):
        tok, a = m.group(0), m.start()
        if tok == '/*':                             # block comments nest
            depth, j = 1, a + 2
            while j < len(src) and depth:
                two = src[j:j + 2]
                depth += (two == '/*') - (two == '*/')
                j += 2 if two in ('/*', '*/') else 1
            lo, hi, i = a, j, j
        elif tok.startswith('//'):
            lo, hi, i = a, m.end(), m.end()
        elif tok.startswith("'"):
            lo, hi, i = a + 1, m.end() - 1, m.end()
        elif tok == '"':
            e = STRING_END.match(src, m.end())
            j = e.end() if e else len(src)
            lo, hi, i = m.end(), j - 1, j
        else:                                       # raw string r#"..."#
            close = '"' + m.group(1)
            j = src.find(close, m.end())
            j = len(src) if j < 0 else j
            lo, hi, i = m.end(), j, j + len(close)
        blank(out, lo, hi)
    return ''.join(out)


def skip_cfg_test(text):
    """Blank every #[cfg(test)] item, up to its `;` or its matching `}`."""
    out = list(text)
    for m in CFG_TEST.finditer(text):
        if out[m.start()] == ' ':                   # inside an item blanked already
            continue
        end = re.compile(r'[;{]').search(text, m.end())
        j = end.start() if end else len(text)
        if j < len(text) and text[j] == '{':
            depth = 0
            for j in range(j, len(text)):
                depth += {'{': 1, '}': -1}.get(text[j], 0)
                if depth == 0:
                    break
        blank(out, m.start(), min(j + 1, len(text)))
    return ''.join(out)


def walk(path, modpath, modules):
    """Record `path` as module `modpath`, then the files its `mod x;` name."""
    raw = open(path, encoding='utf-8').read()
    text = skip_cfg_test(clean(raw))
    here, base = os.path.split(path)
    own = here if base in ('mod.rs', 'lib.rs', 'main.rs') else os.path.join(here, base[:-3])
    children = {}
    for m in MOD_DECL.finditer(text):
        name, p = m.group(2), PATH_ATTR.search(m.group(1))
        at = m.start(1) + p.end() if p else 0
        tries = [os.path.join(here, raw[at:raw.index('"', at)])] if p else \
            [os.path.join(own, name + '.rs'), os.path.join(own, name, 'mod.rs')]
        found = [c for c in tries if os.path.exists(c)]
        if found:
            children[name] = found[0]
    modules[modpath] = (path, raw, text, set(children))
    for name, child in children.items():
        walk(child, modpath + (name,), modules)


def parse_path(text, i, prefix, out):
    """Parse the path or use tree at text[i:], appending its full paths to out."""
    while (m := SEGMENT.match(text, i)):
        tok, i = m.group(1), m.end()
        if tok == '*':
            break
        if tok == '{':
            while not re.match(r'\s*\}', text[i:i + 100]):
                i = parse_path(text, i, prefix, out)
                if not (g := GROUP_NEXT.match(text, i)):
                    return i
                i = g.end()
                if g.group(1) == '}':
                    return i
            return text.index('}', i) + 1
        prefix = prefix + [tok]
        if not (s := SEP.match(text, i)):
            break
        i = s.end()
    if prefix:
        out.append(prefix)
    return i


def resolve(segs, cur, children, modules):
    """The module that path `segs`, written in module `cur`, names (or None)."""
    if segs[0] == 'crate':
        base, segs = (), segs[1:]
    elif segs[0] in ('self', 'super') or segs[0] in children:
        base = cur
        while segs and segs[0] in ('self', 'super'):
            if segs[0] == 'super':
                if not base:
                    return None
                base = base[:-1]
            segs = segs[1:]
    else:
        return None
    full = base + tuple(s for s in segs if s != 'self')
    return next((full[:n] for n in range(len(full), -1, -1) if full[:n] in modules), None)


def references(raw, text):
    """(offset, segments) of every path in the code and in serde path strings."""
    i = 0
    while (m := PATH_START.search(text, i)):
        paths = []
        i = max(parse_path(text, m.start(), [], paths), m.end())
        yield from ((m.start(), segs) for segs in paths)
    for m in SERDE_PATH.finditer(raw):
        if text[m.start()] != ' ':                  # the key itself is live code
            paths = []
            parse_path(raw, m.start(1), [], paths)
            yield from ((m.start(), segs) for segs in paths)


def collect_edges(modules, level, containment=False):
    edges = {}                                      # (a, b) -> first "file:line"
    for cur, (path, raw, text, children) in sorted(modules.items()):
        for at, segs in references(raw, text) if cur else ():
            tgt = resolve(segs, cur, children, modules)
            if not tgt or tgt == cur:
                continue
            # A module reaching into its own submodules (re-exports, calls)
            # is containment, not an import between peers: not an edge
            # unless --containment asks for it.
            if not containment and tgt[:len(cur)] == cur:
                continue
            a, b = (cur[:1], tgt[:1]) if level == 'top' else (cur, tgt)
            if a != b and (a, b) not in edges:
                line = text.count('\n', 0, at) + 1
                edges[(a, b)] = '%s:%d' % (os.path.relpath(path, REPO), line)
    return edges


def bfs(start, succ, inside):
    """Breadth-first predecessor map of everything reachable from start."""
    prev, queue = {}, deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(succ[v] & inside):
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return prev


def sccs(nodes, succ):
    """Strongly connected components (mutual reachability; the graphs are small)."""
    reach = {v: set(bfs(v, succ, nodes)) | {v} for v in nodes}
    return sorted({frozenset(w for w in reach[v] if v in reach[w]) for v in nodes},
                  key=lambda c: min(c))


def cycle_through(start, comp, succ):
    """A shortest cycle start -> ... -> start inside comp."""
    prev, path = bfs(start, succ, comp), [start]
    while path[-1] != start or len(path) == 1:
        path.append(prev[path[-1]])
    return path[::-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('root', nargs='?', default='src', help='crate source dir: src, filters/src')
    ap.add_argument('--level', choices=('file', 'top'), default='file')
    ap.add_argument('--dot', action='store_true', help='print the top-level graph as Graphviz dot')
    ap.add_argument('-v', '--verbose', action='store_true', help='all edges inside each cycle')
    ap.add_argument('--containment', action='store_true',
                    help='also count a module\'s references to its own submodules as edges')
    args = ap.parse_args()
    root = args.root if os.path.isdir(args.root) else os.path.join(REPO, args.root)
    top = next((os.path.join(root, f) for f in ('lib.rs', 'main.rs')
                if os.path.exists(os.path.join(root, f))), None)
    if top is None:
        ap.error('no lib.rs or main.rs in %s' % args.root)
    modules = {}
    walk(top, (), modules)
    known = {os.path.abspath(p) for p in [m[0] for m in modules.values()] + [root + '/main.rs']}
    left = sorted(os.path.relpath(os.path.join(d, f), REPO) for d, _, fs in os.walk(root)
                  for f in fs if f.endswith('.rs') and os.path.abspath(os.path.join(d, f)) not in known)
    if left:
        print('(%d .rs file(s) outside the module tree, test-only or undeclared, ignored%s)'
              % (len(left), ': ' + ' '.join(left) if args.verbose else ''), file=sys.stderr)
    level = 'top' if args.dot else args.level
    edges = collect_edges(modules, level, args.containment)
    name = '::'.join
    nodes = {m[:1] if level == 'top' else m for m in modules if m}
    succ = {v: set() for v in nodes}
    for a, b in edges:
        succ[a].add(b)
    cycles = [c for c in sccs(nodes, succ) if len(c) > 1]
    if args.dot:
        print('digraph modules {\n  rankdir=LR;\n  node [shape=box];')
        print(''.join('  "%s";\n' % name(v) for v in sorted(nodes)), end='')
        for (a, b), where in sorted(edges.items()):
            red = 'color=red, ' if any(a in c and b in c for c in cycles) else ''
            print('  "%s" -> "%s" [%stooltip="%s"];' % (name(a), name(b), red, where))
        print('}')
    for k, comp in enumerate(cycles if not args.dot else [], 1):
        print('cycle %d (%d modules): %s' % (k, len(comp), ', '.join(map(name, sorted(comp)))))
        paths = [[a, b, a] for a in sorted(comp) for b in sorted(succ[a] & comp)
                 if a < b and a in succ[b]]
        for v in sorted(comp):
            if not any(v in p for p in paths):
                paths.append(cycle_through(v, comp, succ))
        for path in paths:
            print('  ' + ' -> '.join(map(name, path)))
            for a, b in zip(path, path[1:]) if not args.verbose else ():
                print('      %s -> %s  %s' % (name(a), name(b), edges[(a, b)]))
        if args.verbose:
            print('  edges inside:')
            for a, b in sorted((a, b) for a in comp for b in succ[a] & comp):
                print('      %s -> %s  %s' % (name(a), name(b), edges[(a, b)]))
    if not args.dot:
        print('%s (level %s): %d modules, %d edges, %d cycle(s)'
              % (args.root, level, len(nodes), len(edges), len(cycles)))
    return 1 if cycles else 0


if __name__ == '__main__':
    sys.exit(main())
