// Namespace detail (#/namespaces/{id}): live usage (#ns-usage, every 5 s:
// GET .../usage and .../monitoring), its matchers (create / edit / delete),
// its limit rules (create / edit / delete), its prefix route and the proxy
// rules that belong to it.
import { useState } from 'preact/hooks';
import { del, get, post, put } from '../lib/api.js';
import { usePoll, useLoad } from '../lib/poll.js';
import { money, num, settings, text, time, yesNo } from '../lib/format.js';
import { navigate } from '../lib/router.js';
import { Table } from '../components/Table.jsx';
import { Dialog } from '../components/Dialog.jsx';
import { Field } from '../components/Field.jsx';
import { Chart } from '../components/Chart.jsx';
import { FormError, LoadError, useFeedback } from '../components/Feedback.jsx';
import { RuleForm } from '../components/RuleForm.jsx';
import { NamespaceForm } from './Namespaces.jsx';

const orNull404 = (p) => p.catch((e) => (e.status === 404 ? null : Promise.reject(e)));

export function NamespaceDetail({ id }) {
  const { notify, confirm } = useFeedback();
  const ns = useLoad(() => get(`/api/v1/namespaces/${id}`), [id]);
  const matchers = useLoad(() => get(`/api/v1/namespaces/${id}/matchers`), [id]);
  const rules = useLoad(() => get(`/api/v1/namespaces/${id}/rules`), [id]);
  const route = useLoad(() => orNull404(get(`/api/v1/namespaces/${id}/route`)), [id]);
  const proxy = useLoad(() => get('/api/v1/proxy-rules'), [id]);
  const [editNs, setEditNs] = useState(false);
  const [matcher, setMatcher] = useState(null);
  const [rule, setRule] = useState(null);

  const n = ns.data;
  const title = n ? `Namespace ${n.namespace_name}` : `Namespace ${id}`;
  const myProxy = (proxy.data || []).filter((p) => String(p.namespace_id) === String(id));

  const saved = (reload, what) => (r, created) => {
    notify(r?.message || `${what} ${created ? 'created' : 'saved'}.`, r);
    reload();
  };

  const removeNs = () =>
    confirm({
      title: 'Delete namespace',
      message: `Delete namespace “${n.namespace_name}” (${n.namespace_code})?`,
      run: async () => {
        const r = await del(`/api/v1/namespaces/${id}`);
        notify(r?.message || 'Namespace deleted.', r);
        navigate('namespaces');
      },
    });
  const removeMatcher = (m) =>
    confirm({
      title: 'Delete matcher',
      message: `Delete matcher ${m.matcher_name || m.matcher_id} (${m.matcher_type} ${m.matcher_config.match_field} ${m.matcher_config.match_operator} ${m.matcher_config.match_value})?`,
      run: async () => {
        const r = await del(`/api/v1/matchers/${m.matcher_id}`);
        notify(r?.message || 'Matcher deleted.', r);
        matchers.reload();
      },
    });
  const removeRule = (x) =>
    confirm({
      title: 'Delete rule',
      message: `Delete rule ${x.rule_name || x.rule_id} (${x.rule_type})?`,
      run: async () => {
        const r = await del(`/api/v1/rules/${x.rule_id}`);
        notify(r?.message || 'Rule deleted.', r);
        rules.reload();
      },
    });

  return (
    <section>
      <p class="crumbs">
        <a href="#/namespaces">Namespaces</a> › {n ? n.namespace_code : id}
      </p>
      <div class="page-head">
        <h1>{title}</h1>
        {n && (
          <div class="row-actions">
            <button type="button" id="ns-edit" onClick={() => setEditNs(true)}>
              Edit
            </button>
            <button type="button" id="ns-delete" class="danger" onClick={removeNs}>
              Delete
            </button>
          </div>
        )}
      </div>
      <LoadError error={ns.error} />
      {n && (
        <dl class="props">
          <dt>ID</dt>
          <dd>{n.id}</dd>
          <dt>Code</dt>
          <dd>
            <code>{n.namespace_code}</code>
          </dd>
          <dt>Active</dt>
          <dd>{yesNo(n.is_active)}</dd>
          <dt>Description</dt>
          <dd>{n.description || '—'}</dd>
          <dt>Updated</dt>
          <dd>{time(n.updated_at)}</dd>
        </dl>
      )}

      <Usage id={id} />

      <h2>Matchers</h2>
      <div class="section-tools">
        <button type="button" id="matcher-new" class="primary" onClick={() => setMatcher({})}>
          New matcher
        </button>
      </div>
      <LoadError error={matchers.error} />
      <Table
        id="matcher-table"
        caption="Matchers"
        rows={matchers.data || []}
        rowId={(m) => m.matcher_id}
        empty="No matcher: requests reach this namespace only through a route, a key or the default."
        columns={[
          { key: 'matcher_id', label: 'ID' },
          { key: 'matcher_name', label: 'Name' },
          { key: 'matcher_type', label: 'Type' },
          { label: 'Field', value: (m) => m.matcher_config.match_field },
          { label: 'Operator', value: (m) => m.matcher_config.match_operator },
          { label: 'Value', value: (m) => m.matcher_config.match_value, render: (m) => <code>{m.matcher_config.match_value}</code> },
          { label: 'Action', value: (m) => m.matcher_config.action },
          { key: 'priority', label: 'Priority', class: 'num' },
          { label: 'Active', value: (m) => yesNo(m.is_active) },
          {
            label: 'Actions',
            render: (m) => (
              <div class="row-actions">
                <button type="button" class="small" id={`matcher-edit-${m.matcher_id}`} onClick={() => setMatcher(m)}>
                  Edit
                </button>
                <button type="button" class="small danger" id={`matcher-delete-${m.matcher_id}`} onClick={() => removeMatcher(m)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />

      <h2>Limit rules</h2>
      <div class="section-tools">
        <button type="button" id="rule-new" class="primary" onClick={() => setRule({ isNew: true })}>
          New rate rule
        </button>
      </div>
      <LoadError error={rules.error} />
      <Table
        id="rule-table"
        caption="Limit rules"
        rows={rules.data || []}
        rowId={(r) => r.rule_id}
        empty="No limit rule in this namespace."
        columns={[
          { key: 'rule_id', label: 'ID' },
          { key: 'rule_name', label: 'Name', class: 'nowrap' },
          { key: 'rule_type', label: 'Type' },
          { label: 'Config', value: (r) => settings(r.rule_config), render: (r) => <code class="wrap">{settings(r.rule_config)}</code> },
          { key: 'priority', label: 'Priority', class: 'num' },
          { label: 'Active', value: (r) => yesNo(r.status) },
          {
            label: 'Actions',
            render: (r) => (
              <div class="row-actions">
                <button type="button" class="small" id={`rule-edit-${r.rule_id}`} onClick={() => setRule(r)}>
                  Edit
                </button>
                <button type="button" class="small danger" id={`rule-delete-${r.rule_id}`} onClick={() => removeRule(r)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />

      <h2>Route</h2>
      <LoadError error={route.error} />
      {route.loading ? (
        <p class="muted">Loading…</p>
      ) : route.data ? (
        <dl class="props" id="ns-route">
          {Object.entries(route.data).map(([k, x]) => [<dt key={`${k}t`}>{k}</dt>, <dd key={`${k}d`}>{x === null ? '—' : text(x)}</dd>])}
        </dl>
      ) : (
        <p class="muted" id="ns-route">
          No route for this namespace.
        </p>
      )}

      <h2>Proxy rules</h2>
      <LoadError error={proxy.error} />
      <Table
        id="proxy-table"
        caption="Proxy rules"
        rows={myProxy}
        rowId={(r) => r.rule_id}
        empty="No proxy rule belongs to this namespace."
        columns={[
          { key: 'rule_id', label: 'ID' },
          { key: 'rule_name', label: 'Name', class: 'nowrap' },
          { key: 'upstream', label: 'Upstream' },
          { key: 'path_pattern', label: 'Path' },
          { key: 'method_pattern', label: 'Method' },
          { key: 'header_pattern', label: 'Header' },
          { key: 'body_pattern', label: 'Body' },
          { key: 'priority', label: 'Priority', class: 'num' },
          { label: 'Active', value: (r) => yesNo(r.is_active) },
        ]}
      />

      {editNs && n && (
        <NamespaceForm
          ns={n}
          onClose={() => setEditNs(false)}
          onSaved={(r) => {
            setEditNs(false);
            notify(r?.message || 'Namespace saved.', r);
            ns.reload();
          }}
        />
      )}
      {matcher && (
        <MatcherForm
          nsId={id}
          matcher={matcher.matcher_id ? matcher : null}
          onClose={() => setMatcher(null)}
          onSaved={(r, created) => {
            setMatcher(null);
            saved(matchers.reload, 'Matcher')(r, created);
          }}
        />
      )}
      {rule && (
        <RuleForm
          namespaceId={id}
          rule={rule.isNew ? null : rule}
          onClose={() => setRule(null)}
          onSaved={(r, created) => {
            setRule(null);
            saved(rules.reload, 'Rule')(r, created);
          }}
        />
      )}
    </section>
  );
}

/** The live usage block (#ns-usage), refreshed every 5 s. */
function Usage({ id }) {
  const usage = usePoll(() => get(`/api/v1/namespaces/${id}/usage`), 5000, [id]);
  const mon = usePoll(() => get(`/api/v1/namespaces/${id}/monitoring`), 5000, [id]);
  const u = usage.data || {};
  const m = (mon.data && mon.data.metrics) || {};
  const perMin = m.req_per_min || [];
  const labels = perMin.map((_, i) => (i === perMin.length - 1 ? 'now' : `-${perMin.length - 1 - i}m`));
  return (
    <section id="ns-usage" class="usage" aria-labelledby="ns-usage-title">
      <h2 id="ns-usage-title">Usage</h2>
      <LoadError error={usage.error || mon.error} />
      <ul class="cards">
        <li class="card stat">
          <span class="stat-label">QPS</span>
          <span class="stat-value" id="ns-usage-qps">{num(u.qps, 2)}</span>
        </li>
        <li class="card stat">
          <span class="stat-label">Concurrency</span>
          <span class="stat-value">{num(u.concurrency)}</span>
        </li>
        <li class="card stat">
          <span class="stat-label">Tokens in / out per min</span>
          <span class="stat-value">
            {num(u.token_input_per_min)} / {num(u.token_output_per_min)}
          </span>
        </li>
        <li class="card stat">
          <span class="stat-label">Cost (1 h)</span>
          <span class="stat-value">{money(u.cost_1h)}</span>
        </li>
        <li class="card stat">
          <span class="stat-label">Rate limit</span>
          <span class="stat-value">
            {u.rate_limit ? (u.rate_limit.enabled ? `${num(u.rate_limit.max_qps, 2)} qps` : 'off') : '—'}
          </span>
        </li>
      </ul>
      <p id="ns-requests-per-minute">
        Requests per minute (last {perMin.length || 5} min, oldest first):{' '}
        <strong>{perMin.length ? perMin.join(', ') : '—'}</strong>
      </p>
      <div class="charts">
        <Chart id="ns-chart-requests" title="Requests per minute" labels={labels} series={[{ name: 'requests', values: perMin }]} />
        <Chart id="ns-chart-latency" title="p95 latency (ms)" labels={labels} series={[{ name: 'p95 ms', values: m.latency_ms_p95 || [] }]} />
        <Chart id="ns-chart-tokens" title="Tokens per minute" labels={labels}
          series={[{ name: 'in', values: m.token_in || [] }, { name: 'out', values: m.token_out || [] }]} />
      </div>
      <p class="muted small">Updated {time(u.updated_at || (mon.data && mon.data.updated_at))} · refreshes every 5 s</p>
    </section>
  );
}

const TYPES = ['header', 'query', 'path', 'body'];
const OPS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'contains', 'regex'];

function MatcherForm({ nsId, matcher, onClose, onSaved }) {
  const c = matcher?.matcher_config || {};
  const [v, setV] = useState({
    matcher_name: matcher?.matcher_name || '',
    matcher_type: matcher?.matcher_type || 'header',
    match_field: c.match_field || '',
    match_operator: c.match_operator || 'eq',
    match_value: c.match_value || '',
    action: c.action || 'allow',
    priority: matcher?.priority ?? '',
    is_active: matcher ? !!matcher.is_active : true,
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (x) => setV({ ...v, [k]: x });

  const submit = async (e) => {
    e.preventDefault();
    const body = { ...v, is_active: v.is_active ? 1 : 0 };
    if (String(v.priority).trim() === '') delete body.priority;
    else body.priority = Number(v.priority);
    if (!body.matcher_name) delete body.matcher_name;
    setBusy(true);
    setError(null);
    try {
      const r = matcher ? await put(`/api/v1/matchers/${matcher.matcher_id}`, body) : await post(`/api/v1/namespaces/${nsId}/matchers`, body);
      onSaved(r, !matcher);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Dialog title={matcher ? `Edit matcher ${matcher.matcher_id}` : 'New matcher'} onClose={onClose} wide>
      <form onSubmit={submit} class="form" noValidate>
        <div class="grid2">
          <Field id="matcher-type" label="Matcher type" name="matcher_type" value={v.matcher_type} onInput={set('matcher_type')} options={TYPES} error={error} />
          <Field id="matcher-field" label="Match field" name="match_field" value={v.match_field} onInput={set('match_field')} error={error}
            hint="Header name, query parameter or dotted body path (ignored for path)." />
          <Field id="matcher-operator" label="Operator" name="match_operator" value={v.match_operator} onInput={set('match_operator')} options={OPS} error={error} />
          <Field id="matcher-value" label="Match value" name="match_value" value={v.match_value} onInput={set('match_value')} error={error} required />
          <Field id="matcher-action" label="Action" name="action" value={v.action} onInput={set('action')} options={[['allow', 'allow (admit)'], ['deny', 'deny (403)']]} error={error} />
          <Field id="matcher-priority" label="Priority (lower runs first)" name="priority" type="number" value={v.priority} onInput={set('priority')} error={error} />
          <Field id="matcher-name" label="Name (optional)" name="matcher_name" value={v.matcher_name} onInput={set('matcher_name')} error={error} />
          <Field id="matcher-active" label="Active" name="is_active" type="checkbox" value={v.is_active} onInput={set('is_active')} error={error} />
        </div>
        <FormError error={error} />
        <div class="form-actions">
          <button type="submit" id="matcher-save" class="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save matcher'}
          </button>
          <button type="button" id="matcher-cancel" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
