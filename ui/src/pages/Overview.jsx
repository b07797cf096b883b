// Overview (#/overview): the last 60 minutes from GET /api/v1/overview
// (requests, errors, p95 latency, tokens, cost) as charts, totals cards,
// health and the fleet's instances; refreshed every 10 s.
import { get } from '../lib/api.js';
import { usePoll } from '../lib/poll.js';
import { clock, money, moneyShort, num, time, yesNo } from '../lib/format.js';
import { Chart } from '../components/Chart.jsx';
import { Table } from '../components/Table.jsx';
import { LoadError } from '../components/Feedback.jsx';
import { Json } from '../components/Json.jsx';

const sum = (list, k) => list.reduce((a, r) => a + (Number(r[k]) || 0), 0);

export function Overview() {
  const { data, error, loading } = usePoll(() => get('/api/v1/overview'), 10000);
  const series = (data && data.series) || [];
  const totals = (data && data.totals) || {};
  const health = (data && data.health) || {};
  const labels = series.map((p) => clock(p.minute));
  const col = (k) => series.map((p) => Number(p[k]) || 0);

  const cards = [
    ['Requests (total)', num(totals.requests_total)],
    ['2xx', num(totals.requests_2xx)],
    ['4xx', num(totals.requests_4xx)],
    ['5xx', num(totals.requests_5xx)],
    ['p95 latency', totals.latency_ms_p95 == null ? '—' : `${num(totals.latency_ms_p95)} ms`],
    ['In-flight requests', num(totals.inflight_requests)],
    ['In-flight streams', num(totals.inflight_streams)],
    ['Requests (60 min)', num(sum(series, 'requests'))],
    ['Errors (60 min)', num(sum(series, 'errors'))],
    ['Tokens in / out (60 min)', `${num(sum(series, 'tokens_in'))} / ${num(sum(series, 'tokens_out'))}`],
    ['Cost (60 min)', money(sum(series, 'cost'))],
  ];
  const known = new Set(cards.map((c) => c[0]));
  const extra = Object.entries(totals).filter(
    ([k, v]) => typeof v === 'number' && !['requests_total', 'requests_2xx', 'requests_4xx', 'requests_5xx', 'latency_ms_p95', 'inflight_requests', 'inflight_streams', 'updated_at'].includes(k) && !known.has(k),
  );

  return (
    <section>
      <div class="page-head">
        <h1>Overview</h1>
        <p class="muted">
          {data ? `Updated ${time(data.generated_at)} · refreshes every 10 s` : loading ? 'Loading…' : ''}
        </p>
      </div>
      <LoadError error={error} />
      <div class="health-line">
        <span class={`badge ${health.status === 'healthy' ? 'ok' : health.status ? 'bad' : ''}`} id="health-status">
          {health.status ? `Health: ${health.status}` : 'Health: —'}
        </span>
        {health.revision != null && <span class="badge">Config revision {health.revision}</span>}
      </div>
      <ul class="cards" id="totals">
        {cards.map(([label, value]) => (
          <li class="card stat" key={label}>
            <span class="stat-label">{label}</span>
            <span class="stat-value">{value}</span>
          </li>
        ))}
        {extra.map(([k, v]) => (
          <li class="card stat" key={k}>
            <span class="stat-label">{k.replace(/_/g, ' ')}</span>
            <span class="stat-value">{num(v, 2)}</span>
          </li>
        ))}
      </ul>
      <h2>Last 60 minutes</h2>
      <div class="charts">
        <Chart id="chart-requests" title="Requests per minute" labels={labels}
          series={[{ name: 'requests', values: col('requests') }, { name: 'errors', values: col('errors') }, { name: 'denials', values: col('denials') }]} />
        <Chart id="chart-latency" title="p95 latency (ms)" labels={labels} series={[{ name: 'p95 ms', values: col('p95_ms') }]} />
        <Chart id="chart-tokens" title="Tokens per minute" labels={labels}
          series={[{ name: 'in', values: col('tokens_in') }, { name: 'out', values: col('tokens_out') }]} />
        <Chart id="chart-cost" title="Cost per minute (USD)" labels={labels} format={moneyShort}
          series={[{ name: 'cost', values: col('cost') }]} />
      </div>
      <h2>Instances</h2>
      <Table
        id="instances"
        caption="Gateway instances"
        rows={(data && data.instances) || []}
        rowId={(r) => r.id}
        empty="No instance reported."
        rowClass={(r) => (r.live === false ? 'row-bad' : undefined)}
        columns={[
          { key: 'id', label: 'Instance' },
          { key: 'address', label: 'Address' },
          { key: 'version', label: 'Version' },
          { label: 'Started', value: (r) => time(r.started_at) },
          { key: 'revision', label: 'Revision' },
          { label: 'Counters', value: (r) => r.counters ?? '—' },
          {
            label: 'Alive',
            value: (r) => yesNo(r.live),
            render: (r) => <span class={`badge ${r.live === false ? 'bad' : 'ok'}`}>{yesNo(r.live)}</span>,
          },
        ]}
      />
      <details class="raw">
        <summary>Health details</summary>
        <Json value={health} label="health" />
      </details>
    </section>
  );
}
