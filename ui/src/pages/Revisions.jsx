// Revisions (#/revisions): the config history (GET /api/v1/revisions,
// 50 at a time, "Load older" follows next_before), a diff of two chosen
// revisions (GET /api/v1/revisions/diff) and restore with confirmation
// (POST /api/v1/revisions/{n}/restore).
import { useState } from 'preact/hooks';
import { get, post, query } from '../lib/api.js';
import { time } from '../lib/format.js';
import { Table } from '../components/Table.jsx';
import { BeforeAfter } from '../components/Json.jsx';
import { FormError, LoadError, useFeedback } from '../components/Feedback.jsx';
import { useLoad } from '../lib/poll.js';

export function Revisions() {
  const [older, setOlder] = useState([]);
  const [next, setNext] = useState(undefined);
  const [moreErr, setMoreErr] = useState(null);
  const first = useLoad(async () => {
    const r = await get(`/api/v1/revisions${query({ limit: 50 })}`);
    setOlder([]);
    setNext(r.next_before);
    return r;
  });
  const [picked, setPicked] = useState([]);
  const [diff, setDiff] = useState(null);
  const [diffErr, setDiffErr] = useState(null);
  const { notify, confirm } = useFeedback();

  const current = first.data?.current;
  const items = [...((first.data && first.data.items) || []), ...older];

  const loadOlder = async () => {
    setMoreErr(null);
    try {
      const r = await get(`/api/v1/revisions${query({ limit: 50, before: next })}`);
      setOlder([...older, ...(r.items || [])]);
      setNext(r.next_before);
    } catch (e) {
      setMoreErr(e);
    }
  };

  const toggle = (n) => {
    if (picked.includes(n)) setPicked(picked.filter((x) => x !== n));
    else setPicked([...picked, n].slice(-2));
  };

  const showDiff = async (a, b) => {
    const from = Math.min(a, b);
    const to = Math.max(a, b);
    setDiffErr(null);
    try {
      const d = await get(`/api/v1/revisions/diff${query({ from, to })}`);
      setDiff({ title: `Changes from revision ${d.from ?? from} to ${d.to ?? to}`, changes: d.changes || [] });
    } catch (e) {
      setDiff(null);
      setDiffErr(e);
    }
    setTimeout(() => document.getElementById('diff-result')?.focus(), 0);
  };

  const restore = (r) =>
    confirm({
      title: `Restore revision ${r.revision}`,
      message: `Restore the config as it was at revision ${r.revision} (${time(r.at)}, ${r.summary || r.cause})? This makes a new revision; nothing is lost.`,
      yes: 'Restore',
      run: async () => {
        const a = await post(`/api/v1/revisions/${r.revision}/restore`, {});
        const n = (a.changes || []).length;
        notify(`Restored revision ${a.restored_from ?? r.revision}: new revision ${a.revision} (${n} ${n === 1 ? 'change' : 'changes'}).`, a);
        setDiff({ title: `Restore of revision ${a.restored_from ?? r.revision} → new revision ${a.revision}`, changes: a.changes || [] });
        setPicked([]);
        first.reload();
      },
    });

  return (
    <section>
      <div class="page-head">
        <h1>Revisions</h1>
        <p class="muted">{current != null ? `Current revision: ${current}` : ''}</p>
      </div>
      <LoadError error={first.error} />
      <div class="section-tools">
        <button type="button" id="diff-show" class="primary" disabled={picked.length !== 2} onClick={() => showDiff(picked[0], picked[1])}>
          {picked.length === 2 ? `Diff ${Math.min(...picked)} → ${Math.max(...picked)}` : `Pick two revisions to diff (${picked.length}/2)`}
        </button>
        {picked.length > 0 && (
          <button type="button" class="ghost" onClick={() => setPicked([])}>
            Clear selection
          </button>
        )}
      </div>
      <Table
        id="revision-table"
        caption="Revisions"
        rows={items}
        rowId={(r) => r.revision}
        rowClass={(r) => (r.revision === current ? 'row-current' : picked.includes(r.revision) ? 'row-picked' : undefined)}
        empty={first.loading ? 'Loading…' : 'No revision.'}
        columns={[
          {
            label: 'Diff',
            render: (r) => (
              <span class="check-cell">
                <input type="checkbox" id={`compare-${r.revision}`} checked={picked.includes(r.revision)} onChange={() => toggle(r.revision)} />
                <label for={`compare-${r.revision}`} class="sr-only">
                  Pick revision {r.revision} to diff
                </label>
              </span>
            ),
          },
          { label: 'Revision', class: 'num', value: (r) => r.revision, render: (r) => (r.revision === current ? <strong>{r.revision} (current)</strong> : r.revision) },
          { label: 'At', value: (r) => time(r.at) },
          { key: 'actor', label: 'Actor' },
          { label: 'Cause', value: (r) => r.cause },
          { key: 'summary', label: 'Summary' },
          { key: 'changes', label: 'Changes', class: 'num' },
          {
            label: 'Actions',
            render: (r) => (
              <div class="row-actions">
                {r.revision > 0 && (
                  <button type="button" class="small" id={`changes-${r.revision}`} onClick={() => showDiff(r.revision - 1, r.revision)}>
                    Changes
                  </button>
                )}
                <button type="button" class="small danger" id={`restore-${r.revision}`} onClick={() => restore(r)}>
                  Restore
                </button>
              </div>
            ),
          },
        ]}
      />
      {next != null && (
        <p>
          <button type="button" id="revisions-older" onClick={loadOlder}>
            Load older revisions
          </button>
        </p>
      )}
      <LoadError error={moreErr} />
      {diffErr && <FormError error={diffErr} id="diff-error" />}
      {diff && (
        <section id="diff-result" tabIndex={-1} aria-labelledby="diff-title" class="diff-result">
          <h2 id="diff-title">{diff.title}</h2>
          <Changes changes={diff.changes} />
        </section>
      )}
    </section>
  );
}

/** A list of entity changes, each with its before/after. */
export function Changes({ changes }) {
  if (!changes.length) return <p class="muted">No change.</p>;
  return (
    <ol class="changes">
      {changes.map((c, i) => (
        <li key={i} class={`change op-${c.operation}`}>
          <h3>
            <span class="badge">{c.operation}</span> {c.entity}/{c.entity_id}
          </h3>
          <BeforeAfter before={c.before} after={c.after} />
        </li>
      ))}
    </ol>
  );
}
