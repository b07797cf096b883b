// Namespaces (#/namespaces): the list (GET /api/v1/namespaces) with live
// QPS and concurrency (GET /api/v1/namespaces/usage/overview, every 5 s),
// create / edit in a dialog (POST, PUT) and delete with confirmation.
import { useState } from 'preact/hooks';
import { del, get, post, put } from '../lib/api.js';
import { usePoll, useLoad } from '../lib/poll.js';
import { num, yesNo } from '../lib/format.js';
import { Table } from '../components/Table.jsx';
import { Dialog } from '../components/Dialog.jsx';
import { Field } from '../components/Field.jsx';
import { FormError, LoadError, useFeedback } from '../components/Feedback.jsx';

export function Namespaces() {
  const list = useLoad(() => get('/api/v1/namespaces'));
  const usage = usePoll(() => get('/api/v1/namespaces/usage/overview'), 5000);
  const [editing, setEditing] = useState(null);
  const { notify, confirm } = useFeedback();

  const live = new Map(((usage.data && Array.isArray(usage.data) ? usage.data : []) || []).map((u) => [u.namespace_id, u]));
  const rows = (list.data || []).map((n) => ({ ...n, qps: live.get(n.id)?.qps, concurrency: live.get(n.id)?.concurrency }));

  const remove = (n) =>
    confirm({
      title: 'Delete namespace',
      message: `Delete namespace “${n.namespace_name}” (${n.namespace_code})? This cannot be undone (except by restoring a revision).`,
      run: async () => {
        const r = await del(`/api/v1/namespaces/${n.id}`);
        notify(r?.message || `Namespace ${n.namespace_code} deleted.`, r);
        list.reload();
      },
    });

  return (
    <section>
      <div class="page-head">
        <h1>Namespaces</h1>
        <button type="button" id="ns-new" class="primary" onClick={() => setEditing({})}>
          New namespace
        </button>
      </div>
      <LoadError error={list.error} />
      <Table
        id="ns-table"
        caption="Namespaces"
        rows={rows}
        rowId={(r) => r.id}
        empty={list.loading ? 'Loading…' : 'No namespace yet.'}
        columns={[
          { key: 'id', label: 'ID' },
          { label: 'Name', value: (r) => r.namespace_name, render: (r) => <a href={`#/namespaces/${r.id}`}>{r.namespace_name}</a> },
          { label: 'Code', value: (r) => r.namespace_code, render: (r) => <code>{r.namespace_code}</code> },
          { key: 'description', label: 'Description' },
          { label: 'Active', value: (r) => yesNo(r.is_active) },
          { label: 'QPS', class: 'num', value: (r) => num(r.qps, 2) },
          { label: 'Concurrency', class: 'num', value: (r) => num(r.concurrency) },
          {
            label: 'Actions',
            render: (r) => (
              <div class="row-actions">
                <a class="button small" href={`#/namespaces/${r.id}`} id={`ns-open-${r.id}`}>
                  Open
                </a>
                <button type="button" class="small" id={`ns-edit-${r.id}`} onClick={() => setEditing(r)}>
                  Edit
                </button>
                <button type="button" class="small danger" id={`ns-delete-${r.id}`} onClick={() => remove(r)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />
      {editing && (
        <NamespaceForm
          ns={editing}
          onClose={() => setEditing(null)}
          onSaved={(r, created) => {
            setEditing(null);
            notify(r?.message || (created ? 'Namespace created.' : 'Namespace saved.'), r);
            list.reload();
          }}
        />
      )}
    </section>
  );
}

/** Create (ns without id) or edit a namespace. */
export function NamespaceForm({ ns, onClose, onSaved }) {
  const [v, setV] = useState({
    namespace_name: ns.namespace_name || '',
    namespace_code: ns.namespace_code || '',
    description: ns.description || '',
    is_active: ns.id ? !!ns.is_active : true,
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (x) => setV({ ...v, [k]: x });

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body = { ...v, is_active: v.is_active ? 1 : 0 };
    try {
      const r = ns.id ? await put(`/api/v1/namespaces/${ns.id}`, body) : await post('/api/v1/namespaces', body);
      onSaved(r, !ns.id);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Dialog title={ns.id ? `Edit namespace ${ns.namespace_code}` : 'New namespace'} onClose={onClose}>
      <form onSubmit={submit} class="form" noValidate>
        <Field id="ns-name" label="Name" name="namespace_name" value={v.namespace_name} onInput={set('namespace_name')} error={error} required />
        <Field id="ns-code" label="Code" name="namespace_code" value={v.namespace_code} onInput={set('namespace_code')} error={error} required
          hint={ns.id ? 'Renaming the code carries over to every reference.' : 'Unique; used by references.'} />
        <Field id="ns-description" label="Description" name="description" value={v.description} onInput={set('description')} error={error} textarea rows={3} />
        <Field id="ns-active" label="Active" name="is_active" type="checkbox" value={v.is_active} onInput={set('is_active')} error={error} />
        <FormError error={error} />
        <div class="form-actions">
          <button type="submit" id="ns-save" class="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
          <button type="button" id="ns-cancel" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
