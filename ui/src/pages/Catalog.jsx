// Catalog (#/catalog): the models of GET /api/v1/catalog with their
// strategy and deployments (live latency, success rate, requests) and the
// bandit report (a table when it is a list of objects, else pretty JSON);
// refreshed every 10 s.
import { get } from '../lib/api.js';
import { usePoll } from '../lib/poll.js';
import { ms, money, num, pct, text } from '../lib/format.js';
import { Table } from '../components/Table.jsx';
import { LoadError } from '../components/Feedback.jsx';
import { Json } from '../components/Json.jsx';

export function Catalog() {
  const cat = usePoll(() => get('/api/v1/catalog'), 10000);
  const models = (cat.data && cat.data.models) || [];
  const rows = models.flatMap((m) => {
    const deps = m.deployments || [];
    if (!deps.length) return [{ model_name: m.name, strategy: m.strategy, key: `${m.name}/` }];
    return deps.map((d, i) => ({ ...d, model_name: m.name, strategy: m.strategy, rank: i + 1, key: `${m.name}/${d.name ?? i}` }));
  });
  const bandit = cat.data ? cat.data.bandit : undefined;

  return (
    <section>
      <div class="page-head">
        <h1>Catalog</h1>
        <p class="muted">
          {models.length} models · {rows.filter((r) => r.name).length} deployments · refreshes every 10 s
        </p>
      </div>
      <LoadError error={cat.error} />
      <h2>Models</h2>
      <Table
        id="model-table"
        caption="Models"
        rows={models}
        rowId={(m) => m.name}
        empty={cat.loading ? 'Loading…' : 'No catalog model.'}
        columns={[
          { key: 'name', label: 'Model', render: (m) => <code>{m.name}</code>, value: (m) => m.name },
          { key: 'strategy', label: 'Strategy', render: (m) => <span class="badge">{m.strategy}</span>, value: (m) => m.strategy },
          { label: 'Deployments', class: 'num', value: (m) => (m.deployments || []).length },
          { label: 'Requests', class: 'num', value: (m) => num((m.deployments || []).reduce((a, d) => a + (Number(d.requests) || 0), 0)) },
        ]}
      />
      <h2>Deployments</h2>
      <Table
        id="deployment-table"
        caption="Deployments"
        rows={rows}
        rowId={(r) => r.key}
        rowClass={(r) => (r.success_rate != null && r.success_rate < 0.9 ? 'row-bad' : undefined)}
        empty={cat.loading ? 'Loading…' : 'No deployment.'}
        columns={[
          { key: 'model_name', label: 'Catalog model' },
          { key: 'strategy', label: 'Strategy' },
          { key: 'name', label: 'Deployment' },
          { key: 'provider', label: 'Provider' },
          { key: 'upstream', label: 'Upstream' },
          { key: 'model', label: 'Upstream model' },
          { label: 'Latency', class: 'num', value: (r) => ms(r.latency_ms) },
          {
            label: 'Success',
            class: 'num',
            value: (r) => pct(r.success_rate),
            render: (r) =>
              r.success_rate == null ? '—' : (
                <span class="meter-cell">
                  <meter min="0" max="1" low="0.9" high="0.99" optimum="1" value={r.success_rate} aria-label="success rate" />
                  {pct(r.success_rate)}
                </span>
              ),
          },
          { label: 'Requests', class: 'num', value: (r) => num(r.requests) },
          { label: 'Breaker', value: (r) => r.breaker ?? '', render: (r) => (r.breaker ? <span class={`badge ${r.breaker === 'closed' ? 'ok' : 'bad'}`}>{r.breaker}</span> : '') },
          { label: 'Price in / out per M', class: 'num', value: (r) => (r.price_input_per_m == null ? '' : `${money(r.price_input_per_m)} / ${money(r.price_output_per_m)}`) },
        ]}
      />
      <h2>Bandit report</h2>
      <Bandit value={bandit} />
    </section>
  );
}

const isRowList = (v) => Array.isArray(v) && v.length > 0 && v.every((x) => x && typeof x === 'object' && !Array.isArray(x));

function Bandit({ value }) {
  if (value === undefined || value === null) return <p class="muted">No bandit report.</p>;
  // {items: [rows], summary: {...}}: the rows as a table, the rest as properties.
  if (!Array.isArray(value) && typeof value === 'object' && isRowList(value.items)) {
    const rest = Object.entries(value).filter(([k]) => k !== 'items');
    return (
      <>
        {rest.map(([k, v]) => (
          <div key={k}>
            <h3>{k}</h3>
            {v && typeof v === 'object' && !Array.isArray(v) ? (
              <dl class="props">
                {Object.entries(v).map(([a, b]) => [<dt key={`${a}t`}>{a}</dt>, <dd key={`${a}d`}>{typeof b === 'number' && !Number.isInteger(b) ? num(b, 4) : text(b)}</dd>])}
              </dl>
            ) : (
              <Json value={v} label={k} />
            )}
          </div>
        ))}
        <h3>Arms</h3>
        <Bandit value={value.items} />
      </>
    );
  }
  if (!isRowList(value)) return <Json value={value} label="bandit report" />;
  const keys = [...new Set(value.flatMap((x) => Object.keys(x)))];
  return (
    <Table
      id="bandit-table"
      caption="Bandit report"
      rows={value}
      rowId={(r) => r.arm_id ?? r.id ?? r.name ?? r.arm ?? keys.map((k) => text(r[k])).join('/')}
      columns={keys.map((k) => ({
        key: k,
        label: k,
        class: typeof value[0][k] === 'number' ? 'num' : undefined,
        value: (r) => (typeof r[k] === 'number' && !Number.isInteger(r[k]) ? num(r[k], 4) : text(r[k])),
      }))}
    />
  );
}
