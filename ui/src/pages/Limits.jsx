// Limits (#/limits): every limit rule with its live counter and what
// remains (GET /api/v1/limits, every 5 s); edit (PUT /api/v1/rules/{id},
// the rule read with GET /api/v1/rules/{id}) and delete with confirmation.
import { useState } from 'preact/hooks';
import { del, get } from '../lib/api.js';
import { usePoll } from '../lib/poll.js';
import { num, settings } from '../lib/format.js';
import { Table } from '../components/Table.jsx';
import { LoadError, useFeedback } from '../components/Feedback.jsx';
import { RuleForm } from '../components/RuleForm.jsx';

export function Limits() {
  const limits = usePoll(() => get('/api/v1/limits'), 5000);
  const [rule, setRule] = useState(null);
  const [loadErr, setLoadErr] = useState(null);
  const { notify, confirm } = useFeedback();
  const items = (limits.data && limits.data.items) || [];

  const edit = async (x) => {
    setLoadErr(null);
    try {
      setRule(await get(`/api/v1/rules/${x.rule_id}`));
    } catch (e) {
      setLoadErr(e);
    }
  };
  const remove = (x) =>
    confirm({
      title: 'Delete rule',
      message: `Delete rule ${x.rule_name || x.rule_id} (${x.rule_type}${x.namespace_code ? `, namespace ${x.namespace_code}` : ''})?`,
      run: async () => {
        const r = await del(`/api/v1/rules/${x.rule_id}`);
        notify(r?.message || 'Rule deleted.', r);
        limits.reload();
      },
    });

  return (
    <section>
      <div class="page-head">
        <h1>Limits</h1>
        <p class="muted">
          Refreshed every 5 s. “Used” is what this instance served of the rule’s namespace over its window (minute
          resolution); admission itself counts in the counter store, across instances.
        </p>
      </div>
      <LoadError error={limits.error || loadErr} />
      <Table
        id="limit-table"
        caption="Limit rules"
        rows={items}
        rowId={(r) => r.rule_id}
        rowClass={(r) => (r.remaining === 0 ? 'row-bad' : undefined)}
        empty={limits.loading ? 'Loading…' : 'No limit rule.'}
        columns={[
          { key: 'rule_id', label: 'ID' },
          { key: 'rule_name', label: 'Name', class: 'nowrap' },
          { key: 'rule_type', label: 'Type' },
          {
            label: 'Namespace',
            value: (r) => r.namespace_code || 'all',
            render: (r) => (r.namespace_id != null ? <a href={`#/namespaces/${r.namespace_id}`}>{r.namespace_code || r.namespace_id}</a> : r.namespace_code || 'all'),
          },
          { label: 'Limit', class: 'num', value: (r) => num(r.limit) },
          { label: 'Window', class: 'num', value: (r) => (r.window_seconds == null ? '—' : `${num(r.window_seconds)} s`) },
          {
            label: 'Used',
            value: (r) => num(r.used),
            render: (r) =>
              r.limit && r.used != null ? (
                <span class="meter-cell">
                  <meter min="0" max={r.limit} low={r.limit * 0.7} high={r.limit * 0.9} optimum="0" value={Math.min(r.used, r.limit)}
                    aria-label={`${r.used} of ${r.limit} used`} />
                  {num(r.used)}
                </span>
              ) : (
                num(r.used)
              ),
          },
          { label: 'Remaining', class: 'num', value: (r) => num(r.remaining) },
          { label: 'Config', value: (r) => settings(r.rule_config), render: (r) => <code class="wrap">{settings(r.rule_config)}</code> },
          {
            label: 'Actions',
            render: (r) => (
              <div class="row-actions">
                <button type="button" class="small" id={`limit-edit-${r.rule_id}`} onClick={() => edit(r)}>
                  Edit
                </button>
                <button type="button" class="small danger" id={`limit-delete-${r.rule_id}`} onClick={() => remove(r)}>
                  Delete
                </button>
              </div>
            ),
          },
        ]}
      />
      {rule && (
        <RuleForm
          rule={rule}
          onClose={() => setRule(null)}
          onSaved={(r) => {
            setRule(null);
            notify(r?.message || 'Rule saved.', r);
            limits.reload();
          }}
        />
      )}
    </section>
  );
}
