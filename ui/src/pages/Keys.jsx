// Keys and users (#/keys): API keys (GET/POST /api/v1/api-keys; a new or
// rotated key is shown once; rotate; delete with confirmation) and users
// (GET/POST /api/v1/users; deactivate / activate with PUT is_active).
import { useState } from 'preact/hooks';
import { del, get, post, put } from '../lib/api.js';
import { useLoad } from '../lib/poll.js';
import { time, yesNo } from '../lib/format.js';
import { Table } from '../components/Table.jsx';
import { Dialog } from '../components/Dialog.jsx';
import { Field } from '../components/Field.jsx';
import { FormError, LoadError, useFeedback } from '../components/Feedback.jsx';

export function Keys() {
  const keys = useLoad(() => get('/api/v1/api-keys'));
  const users = useLoad(() => get('/api/v1/users'));
  const namespaces = useLoad(() => get('/api/v1/namespaces'));
  const [keyForm, setKeyForm] = useState(false);
  const [rotating, setRotating] = useState(null);
  const [secret, setSecret] = useState(null);
  const [userForm, setUserForm] = useState(false);
  const { notify, confirm } = useFeedback();
  const nsOptions = [['', '(none)'], ...(namespaces.data || []).map((n) => [String(n.id), `${n.namespace_code} — ${n.namespace_name}`])];

  const removeKey = (k) =>
    confirm({
      title: 'Delete API key',
      message: `Revoke and delete API key “${k.name}” (${k.masked})? Clients using it are refused at once.`,
      run: async () => {
        const r = await del(`/api/v1/api-keys/${k.key_id}`);
        notify(r?.message || 'API key deleted.', r);
        keys.reload();
      },
    });
  const setActive = (u, active) =>
    confirm({
      title: active ? 'Activate user' : 'Deactivate user',
      message: active ? `Activate user ${u.email}?` : `Deactivate user ${u.email}? Their sessions end at once.`,
      yes: active ? 'Activate' : 'Deactivate',
      run: async () => {
        const r = await put(`/api/v1/users/${u.user_id}`, { is_active: active ? 1 : 0 });
        notify(r?.message || (active ? 'User activated.' : 'User deactivated.'), r);
        users.reload();
      },
    });
  const removeUser = (u) =>
    confirm({
      title: 'Delete user',
      message: `Delete user ${u.email}?`,
      run: async () => {
        const r = await del(`/api/v1/users/${u.user_id}`);
        notify(r?.message || 'User deleted.', r);
        users.reload();
      },
    });

  return (
    <section>
      <div class="page-head">
        <h1>Keys and users</h1>
      </div>
      <div class="page-head">
        <h2>API keys</h2>
        <button type="button" id="key-new" class="primary" onClick={() => setKeyForm(true)}>
          New API key
        </button>
      </div>
      <LoadError error={keys.error} />
      <Table
        id="key-table"
        caption="API keys"
        rows={keys.data || []}
        rowId={(k) => k.key_id}
        empty={keys.loading ? 'Loading…' : 'No API key.'}
        columns={[
          { key: 'key_id', label: 'ID' },
          { key: 'name', label: 'Name' },
          { key: 'masked', label: 'Key', render: (k) => <code>{k.masked}</code>, value: (k) => k.masked },
          { label: 'Namespace', value: (k) => k.namespace_code || '' },
          { label: 'Models', value: (k) => (k.models ? k.models.join(', ') : 'all') },
          { label: 'Active', value: (k) => yesNo(k.is_active) },
          { label: 'Expires', value: (k) => (k.expires_at ? time(k.expires_at) : 'never') },
          { label: 'Old key valid until', value: (k) => (k.previous_until ? time(k.previous_until) : '') },
          {
            label: 'Actions',
            render: (k) => (
              <div class="row-actions">
                <button type="button" class="small" id={`key-rotate-${k.key_id}`} onClick={() => setRotating(k)}>
                  Rotate
                </button>
                <button type="button" class="small danger" id={`key-delete-${k.key_id}`} onClick={() => removeKey(k)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />

      <div class="page-head">
        <h2>Users</h2>
        <button type="button" id="user-new" class="primary" onClick={() => setUserForm(true)}>
          New user
        </button>
      </div>
      <LoadError error={users.error} />
      <Table
        id="user-table"
        caption="Users"
        rows={users.data || []}
        rowId={(u) => u.user_id}
        rowClass={(u) => (u.is_active ? undefined : 'row-muted')}
        empty={users.loading ? 'Loading…' : 'No user.'}
        columns={[
          { key: 'user_id', label: 'ID' },
          { key: 'email', label: 'Email' },
          { key: 'role', label: 'Role' },
          { label: 'Namespace', value: (u) => u.namespace_code || '' },
          { label: 'Active', value: (u) => yesNo(u.is_active) },
          { label: 'Created', value: (u) => time(u.created_at) },
          {
            label: 'Actions',
            render: (u) => (
              <div class="row-actions">
                {u.is_active ? (
                  <button type="button" class="small danger" id={`user-deactivate-${u.user_id}`} onClick={() => setActive(u, false)}>
                    Deactivate
                  </button>
                ) : (
                  <button type="button" class="small" id={`user-activate-${u.user_id}`} onClick={() => setActive(u, true)}>
                    Activate
                  </button>
                )}
                <button type="button" class="small danger" id={`user-delete-${u.user_id}`} onClick={() => removeUser(u)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />

      {keyForm && (
        <KeyForm
          nsOptions={nsOptions}
          onClose={() => setKeyForm(false)}
          onSaved={(r) => {
            setKeyForm(false);
            notify(r?.message || 'API key created.', r);
            setSecret(r);
            keys.reload();
          }}
        />
      )}
      {rotating && (
        <RotateForm
          apiKey={rotating}
          onClose={() => setRotating(null)}
          onSaved={(r) => {
            setRotating(null);
            notify(r?.message || 'API key rotated.', r);
            setSecret(r);
            keys.reload();
          }}
        />
      )}
      {secret && <SecretDialog answer={secret} onClose={() => setSecret(null)} />}
      {userForm && (
        <UserForm
          nsOptions={nsOptions}
          onClose={() => setUserForm(false)}
          onSaved={(r) => {
            setUserForm(false);
            notify(r?.message || 'User created.', r);
            users.reload();
          }}
        />
      )}
    </section>
  );
}

/** Runs `send` on submit; keeps its error for the form. */
function useSubmit(send, onSaved) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSaved(await send());
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return { error, busy, submit };
}

function KeyForm({ nsOptions, onClose, onSaved }) {
  const [v, setV] = useState({ name: '', namespace_id: '', models: '', expires_in_seconds: '' });
  const set = (k) => (x) => setV({ ...v, [k]: x });
  const { error, busy, submit } = useSubmit(() => {
    const body = { name: v.name };
    if (v.namespace_id) body.namespace_id = Number(v.namespace_id);
    const models = v.models.split(',').map((s) => s.trim()).filter(Boolean);
    if (models.length) body.models = models;
    if (v.expires_in_seconds.trim()) body.expires_in_seconds = Number(v.expires_in_seconds);
    return post('/api/v1/api-keys', body);
  }, onSaved);
  return (
    <Dialog title="New API key" onClose={onClose}>
      <form onSubmit={submit} class="form" noValidate>
        <Field id="key-name" label="Name" name="name" value={v.name} onInput={set('name')} error={error} required />
        <Field id="key-namespace" label="Namespace" name="namespace_id" value={v.namespace_id} onInput={set('namespace_id')} options={nsOptions} error={error} />
        <Field id="key-models" label="Models (comma-separated, * allowed)" name="models" value={v.models} onInput={set('models')} error={error}
          placeholder="gpt-4o*, claude-*" hint="Empty: every model." />
        <Field id="key-expires" label="Expires in (seconds)" name="expires_in_seconds" type="number" value={v.expires_in_seconds}
          onInput={set('expires_in_seconds')} error={error} hint="Empty: never expires." />
        <FormError error={error} />
        <div class="form-actions">
          <button type="submit" id="key-save" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create key'}
          </button>
          <button type="button" id="key-cancel" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function RotateForm({ apiKey, onClose, onSaved }) {
  const [overlap, setOverlap] = useState('3600');
  const { error, busy, submit } = useSubmit(
    () => post(`/api/v1/api-keys/${apiKey.key_id}/rotate`, overlap.trim() ? { overlap_seconds: Number(overlap) } : {}),
    onSaved,
  );
  return (
    <Dialog title={`Rotate API key ${apiKey.name}`} onClose={onClose}>
      <form onSubmit={submit} class="form" noValidate>
        <p>A new key is made and shown once. The old key keeps working for the overlap below, then is refused.</p>
        <Field id="rotate-overlap" label="Overlap (seconds)" name="overlap_seconds" type="number" value={overlap} onInput={setOverlap} error={error} />
        <FormError error={error} />
        <div class="form-actions">
          <button type="submit" id="rotate-save" class="primary" disabled={busy}>
            {busy ? 'Rotating…' : 'Rotate'}
          </button>
          <button type="button" id="rotate-cancel" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function SecretDialog({ answer, onClose }) {
  const [copied, setCopied] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(answer.key);
      setCopied('Copied.');
    } catch {
      setCopied('Copy failed: select the key and copy it by hand.');
    }
  };
  return (
    <Dialog title="Your new API key" onClose={onClose}>
      <p>
        <strong>This is the only time the key is shown.</strong> Store it now.
      </p>
      <label for="key-secret">Key for {answer.api_key?.name || `#${answer.key_id}`}</label>
      <input id="key-secret" class="mono" readOnly value={answer.key} onFocus={(e) => e.currentTarget.select()} />
      <p class="muted" aria-live="polite">{copied}</p>
      <div class="form-actions">
        <button type="button" id="key-copy" onClick={copy}>
          Copy
        </button>
        <button type="button" id="key-done" class="primary" onClick={onClose}>
          Done
        </button>
      </div>
    </Dialog>
  );
}

function UserForm({ nsOptions, onClose, onSaved }) {
  const [v, setV] = useState({ email: '', password: '', role: 'user', namespace_id: '' });
  const set = (k) => (x) => setV({ ...v, [k]: x });
  const { error, busy, submit } = useSubmit(() => {
    const body = { email: v.email, password: v.password, role: v.role };
    if (v.namespace_id) body.namespace_id = Number(v.namespace_id);
    return post('/api/v1/users', body);
  }, onSaved);
  return (
    <Dialog title="New user" onClose={onClose}>
      <form onSubmit={submit} class="form" noValidate>
        <Field id="user-email" label="Email" name="email" type="email" value={v.email} onInput={set('email')} error={error} required />
        <Field id="user-password" label="Password" name="password" type="password" autocomplete="new-password" value={v.password}
          onInput={set('password')} error={error} required />
        <Field id="user-role" label="Role" name="role" value={v.role} onInput={set('role')} options={[['user', 'user'], ['admin', 'admin']]} error={error} />
        <Field id="user-namespace" label="Namespace" name="namespace_id" value={v.namespace_id} onInput={set('namespace_id')} options={nsOptions} error={error} />
        <FormError error={error} />
        <div class="form-actions">
          <button type="submit" id="user-save" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create user'}
          </button>
          <button type="button" id="user-cancel" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
