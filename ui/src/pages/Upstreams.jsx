// Upstreams (#/upstreams): the upstream servers (GET/POST/PUT/DELETE
// /api/v1/upstream-servers) and the pools with live health from
// GET /api/v1/upstreams (refreshed every 10 s).
import { useState } from 'preact/hooks';
import { del, get, post, put } from '../lib/api.js';
import { usePoll, useLoad } from '../lib/poll.js';
import { num, yesNo } from '../lib/format.js';
import { Table } from '../components/Table.jsx';
import { Dialog } from '../components/Dialog.jsx';
import { Field } from '../components/Field.jsx';
import { FormError, LoadError, useFeedback } from '../components/Feedback.jsx';

export function Upstreams() {
  const servers = useLoad(() => get('/api/v1/upstream-servers'));
  const pools = usePoll(() => get('/api/v1/upstreams'), 10000);
  const [editing, setEditing] = useState(null);
  const { notify, confirm } = useFeedback();

  const poolRows = ((pools.data && pools.data.pools) || []).flatMap((p) =>
    (p.servers || []).map((s, i) => ({ ...s, pool: p.name, key: `${p.name}/${s.server_id ?? s.server ?? i}` })),
  );
  const emptyPools = ((pools.data && pools.data.pools) || []).filter((p) => !(p.servers || []).length);

  const remove = (s) =>
    confirm({
      title: 'Delete upstream server',
      message: `Delete upstream server “${s.server_name}” (${s.server_address}:${s.server_port})?`,
      run: async () => {
        const r = await del(`/api/v1/upstream-servers/${s.server_id}`);
        notify(r?.message || 'Server deleted.', r);
        servers.reload();
        pools.reload();
      },
    });

  return (
    <section>
      <div class="page-head">
        <h1>Upstreams</h1>
      </div>
      <h2>Pools and health</h2>
      <p class="muted small">Refreshes every 10 s.</p>
      <LoadError error={pools.error} />
      <Table
        id="pool-table"
        caption="Pools"
        rows={poolRows}
        rowId={(r) => r.key}
        rowClass={(r) => (!r.healthy || r.circuit_open ? 'row-bad' : undefined)}
        empty={pools.loading ? 'Loading…' : 'No pool.'}
        columns={[
          { key: 'pool', label: 'Pool' },
          { key: 'server', label: 'Server' },
          { key: 'address', label: 'Address' },
          {
            label: 'Healthy',
            value: (r) => yesNo(r.healthy),
            render: (r) => <span class={`badge ${r.healthy ? 'ok' : 'bad'}`}>{r.healthy ? 'healthy' : 'unhealthy'}</span>,
          },
          {
            label: 'Circuit',
            value: (r) => (r.circuit_open ? 'open' : 'closed'),
            render: (r) => <span class={`badge ${r.circuit_open ? 'bad' : 'ok'}`}>{r.circuit_open ? 'open' : 'closed'}</span>,
          },
          { label: 'In flight', class: 'num', value: (r) => num(r.inflight) },
        ]}
      />
      {emptyPools.length > 0 && <p class="muted">Pools without servers: {emptyPools.map((p) => p.name).join(', ')}</p>}

      <div class="page-head">
        <h2>Servers</h2>
        <button type="button" id="server-new" class="primary" onClick={() => setEditing({})}>
          New server
        </button>
      </div>
      <LoadError error={servers.error} />
      <Table
        id="server-table"
        caption="Upstream servers"
        rows={servers.data || []}
        rowId={(s) => s.server_id}
        empty={servers.loading ? 'Loading…' : 'No upstream server.'}
        columns={[
          { key: 'server_id', label: 'ID' },
          { key: 'server_name', label: 'Name' },
          { key: 'pool', label: 'Pool' },
          { label: 'Address', value: (s) => `${s.server_address}:${s.server_port}` },
          { key: 'server_type', label: 'Scheme' },
          { key: 'provider', label: 'Provider' },
          { key: 'weight', label: 'Weight', class: 'num' },
          { key: 'max_connections', label: 'Max conn.', class: 'num' },
          { key: 'health_check_url', label: 'Health check' },
          { label: 'API key', value: (s) => s.api_key || '' },
          { label: 'Active', value: (s) => yesNo(s.is_active) },
          {
            label: 'Actions',
            render: (s) => (
              <div class="row-actions">
                <button type="button" class="small" id={`server-edit-${s.server_id}`} onClick={() => setEditing(s)}>
                  Edit
                </button>
                <button type="button" class="small danger" id={`server-delete-${s.server_id}`} onClick={() => remove(s)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />
      {editing && (
        <ServerForm
          server={editing.server_id ? editing : null}
          onClose={() => setEditing(null)}
          onSaved={(r, created) => {
            setEditing(null);
            notify(r?.message || (created ? 'Server created.' : 'Server saved.'), r);
            servers.reload();
            pools.reload();
          }}
        />
      )}
    </section>
  );
}

function ServerForm({ server, onClose, onSaved }) {
  const s = server || {};
  const [v, setV] = useState({
    server_name: s.server_name || '',
    server_address: s.server_address || '',
    server_port: s.server_port ?? '',
    pool: s.pool || '',
    server_type: s.server_type || 'http',
    provider: s.provider || 'openai',
    weight: s.weight ?? '',
    max_connections: s.max_connections ?? '',
    health_check_url: s.health_check_url || '',
    sni: s.sni || '',
    api_key: '',
    is_active: server ? !!s.is_active : true,
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (x) => setV({ ...v, [k]: x });

  const submit = async (e) => {
    e.preventDefault();
    const body = {
      server_name: v.server_name,
      server_address: v.server_address,
      server_port: v.server_port === '' ? undefined : Number(v.server_port),
      server_type: v.server_type,
      provider: v.provider,
      is_active: v.is_active ? 1 : 0,
    };
    for (const k of ['weight', 'max_connections']) if (String(v[k]).trim() !== '') body[k] = Number(v[k]);
    // Text fields: empty means unset (null on edit clears them).
    for (const k of ['pool', 'health_check_url', 'sni']) {
      if (v[k].trim()) body[k] = v[k].trim();
      else if (server && s[k]) body[k] = null;
    }
    if (v.api_key) body.api_key = v.api_key;
    setBusy(true);
    setError(null);
    try {
      const r = server ? await put(`/api/v1/upstream-servers/${s.server_id}`, body) : await post('/api/v1/upstream-servers', body);
      onSaved(r, !server);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Dialog title={server ? `Edit server ${s.server_name}` : 'New upstream server'} onClose={onClose} wide>
      <form onSubmit={submit} class="form" noValidate>
        <div class="grid2">
          <Field id="server-name" label="Name" name="server_name" value={v.server_name} onInput={set('server_name')} error={error} required />
          <Field id="server-pool" label="Pool" name="pool" value={v.pool} onInput={set('pool')} error={error} hint="Empty: the server's own pool." />
          <Field id="server-address" label="Address" name="server_address" value={v.server_address} onInput={set('server_address')} error={error} required />
          <Field id="server-port" label="Port" name="server_port" type="number" value={v.server_port} onInput={set('server_port')} error={error} required />
          <Field id="server-type" label="Scheme" name="server_type" value={v.server_type} onInput={set('server_type')} options={['http', 'https', 'h2c']} error={error} />
          <Field id="server-provider" label="Provider" name="provider" value={v.provider} onInput={set('provider')}
            options={['openai', 'openai_compatible', 'azure', 'anthropic']} error={error} />
          <Field id="server-weight" label="Weight" name="weight" type="number" value={v.weight} onInput={set('weight')} error={error} />
          <Field id="server-max-connections" label="Max connections" name="max_connections" type="number" value={v.max_connections} onInput={set('max_connections')} error={error} />
          <Field id="server-health" label="Health check URL" name="health_check_url" value={v.health_check_url} onInput={set('health_check_url')} error={error} placeholder="/health" />
          <Field id="server-sni" label="SNI" name="sni" value={v.sni} onInput={set('sni')} error={error} />
          <Field id="server-api-key" label="Upstream API key" name="api_key" type="password" value={v.api_key} onInput={set('api_key')} error={error}
            hint={server ? 'Leave empty to keep the current key.' : 'Sent to the upstream; never shown again.'} autocomplete="new-password" />
          <Field id="server-active" label="Active" name="is_active" type="checkbox" value={v.is_active} onInput={set('is_active')} error={error} />
        </div>
        <FormError error={error} />
        <div class="form-actions">
          <button type="submit" id="server-save" class="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save server'}
          </button>
          <button type="button" id="server-cancel" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
