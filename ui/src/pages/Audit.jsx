// Audit (#/audit): the change log (GET /api/v1/audit?entity=&since=&limit=,
// newest first, "Load older" follows next_before) with an entity filter
// and a before/after view of each entry.
import { useEffect, useState } from 'preact/hooks';
import { get, query } from '../lib/api.js';
import { time } from '../lib/format.js';
import { Table } from '../components/Table.jsx';
import { Dialog } from '../components/Dialog.jsx';
import { Field } from '../components/Field.jsx';
import { BeforeAfter, Json } from '../components/Json.jsx';
import { FormError } from '../components/Feedback.jsx';

const ENTITIES = ['namespaces', 'upstream_servers', 'matchers', 'proxy_rules', 'routes', 'rules', 'nginx_configs', 'virtual_keys', 'users', 'agent_tokens'];

export function Audit() {
  const [f, setF] = useState({ entity: '', since: '', limit: '100' });
  const [items, setItems] = useState(null);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState(null);
  const [asked, setAsked] = useState(null);
  const set = (k) => (x) => setF({ ...f, [k]: x });

  const params = (before) => {
    let since = f.since.trim();
    // A datetime-local value (no zone) is local time: send it as RFC 3339 UTC.
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(since)) since = new Date(since).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return query({ entity: f.entity, since, limit: f.limit, before });
  };

  const load = async (e, before) => {
    if (e) e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await get(`/api/v1/audit${params(before)}`);
      setItems(before ? [...(items || []), ...(r.items || [])] : r.items || []);
      setNext(r.next_before ?? null);
      setAsked(f);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    load();
  }, []);

  return (
    <section>
      <div class="page-head">
        <h1>Audit</h1>
      </div>
      <form class="form filters card" onSubmit={(e) => load(e)} noValidate>
        <Field id="audit-entity" label="Entity" name="entity" value={f.entity} onInput={set('entity')} options={[['', 'all entities'], ...ENTITIES.map((x) => [x, x])]} error={error} />
        <Field id="audit-since" label="Since (RFC 3339 or unix seconds)" name="since" value={f.since} onInput={set('since')} error={error} placeholder="2026-12-05T10:00:00Z" />
        <Field id="audit-limit" label="Limit" name="limit" value={f.limit} onInput={set('limit')} options={['50', '100', '200', '500']} error={error} />
        <div class="form-actions">
          <button type="submit" id="audit-load" class="primary" disabled={busy}>
            {busy ? 'Loading…' : 'Apply'}
          </button>
        </div>
        <FormError error={error} />
      </form>
      <Table
        id="audit-table"
        caption="Audit entries"
        rows={items || []}
        rowId={(r) => r.id}
        empty={items === null ? 'Loading…' : asked && (asked.entity || asked.since) ? 'No entry matches.' : 'No audit entry yet.'}
        columns={[
          { key: 'id', label: 'ID' },
          { key: 'revision', label: 'Revision', class: 'num' },
          { label: 'At', value: (r) => time(r.at) },
          { key: 'actor', label: 'Actor' },
          { key: 'entity', label: 'Entity' },
          { key: 'entity_id', label: 'Entity ID' },
          { key: 'operation', label: 'Operation', render: (r) => <span class="badge">{r.operation}</span>, value: (r) => r.operation },
          { key: 'cause', label: 'Cause' },
          {
            label: 'Details',
            render: (r) => (
              <button type="button" class="small" id={`audit-view-${r.id}`} onClick={() => setOpen(r)}>
                Before / after
              </button>
            ),
          },
        ]}
      />
      {next != null && (
        <p>
          <button type="button" id="audit-older" disabled={busy} onClick={() => load(null, next)}>
            Load older entries
          </button>
        </p>
      )}
      {open && (
        <Dialog title={`${open.operation} ${open.entity}/${open.entity_id} · revision ${open.revision}`} onClose={() => setOpen(null)} wide>
          <p class="muted">
            {time(open.at)} by {open.actor}
          </p>
          <BeforeAfter before={open.before} after={open.after} />
          <div class="before-after">
            <div>
              <h3>Before</h3>
              <Json value={open.before} label="before" />
            </div>
            <div>
              <h3>After</h3>
              <Json value={open.after} label="after" />
            </div>
          </div>
        </Dialog>
      )}
    </section>
  );
}
