// JSON display: pretty-printed blocks, and a before/after view that lists
// each top-level field with its old and new value, changed ones marked.
import { text } from '../lib/format.js';

export function Json({ value, label }) {
  return (
    <pre class="json" tabIndex={0} aria-label={label}>
      {value === undefined ? '' : JSON.stringify(value, null, 2)}
    </pre>
  );
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

export function BeforeAfter({ before, after }) {
  const obj = (v) => v && typeof v === 'object' && !Array.isArray(v);
  if (!obj(before) && !obj(after)) {
    return (
      <div class="before-after">
        <div>
          <h4>Before</h4>
          <Json value={before} label="before" />
        </div>
        <div>
          <h4>After</h4>
          <Json value={after} label="after" />
        </div>
      </div>
    );
  }
  const b = before || {};
  const a = after || {};
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  return (
    <div class="table-scroll">
      <table class="diff">
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Before</th>
            <th scope="col">After</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const changed = !same(b[k], a[k]);
            return (
              <tr key={k} class={changed ? 'changed' : undefined}>
                <th scope="row">
                  {k}
                  {changed && <span class="sr-only"> (changed)</span>}
                </th>
                <td class="mono">{before == null ? '' : k in b ? text(b[k]) : '—'}</td>
                <td class="mono">{after == null ? '' : k in a ? text(a[k]) : '—'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
