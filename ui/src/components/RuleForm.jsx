// The limit-rule form (create in a namespace, or edit any rule), its
// rule_config fields drawn from GET /api/v1/rules/types. The rate-limit
// fields keep the ids #rule-max-requests and #rule-window.
import { useState } from 'preact/hooks';
import { get, post, put } from '../lib/api.js';
import { useLoad } from '../lib/poll.js';
import { Dialog } from './Dialog.jsx';
import { Field } from './Field.jsx';
import { FormError } from './Feedback.jsx';

const FALLBACK = [
  {
    type: 'rate_limit',
    description: 'At most max_requests requests per time_window_seconds.',
    config_schema: {
      max_requests: { type: 'number', description: 'Requests allowed per time_window_seconds.' },
      time_window_seconds: { type: 'number', default: 1, description: 'Window length in seconds.' },
    },
  },
];

// The fields in a useful order (the API lists them alphabetically).
const ORDER = ['max_requests', 'time_window_seconds', 'max_concurrent', 'max_usd', 'period', 'window_minutes', 'fallback_model',
  'model_name', 'max_tokens', 'max_input_tokens', 'max_output_tokens', 'time_window_enabled', 'time_window_minutes',
  'max_tokens_per_window', 'algorithm', 'burst', 'max_qps', 'key_by', 'header_name', 'channel', 'fail_mode'];
const rank = (name) => (ORDER.includes(name) ? ORDER.indexOf(name) : ORDER.length);
const ordered = (schema) =>
  Object.entries(schema).sort(([a, x], [b, y]) => (y.required ? 1 : 0) - (x.required ? 1 : 0) || rank(a) - rank(b) || a.localeCompare(b));

const IDS = { max_requests: 'rule-max-requests', time_window_seconds: 'rule-window' };
const fieldId = (name) => IDS[name] || `rule-cfg-${name.replace(/_/g, '-')}`;

function toText(v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return v;
}

function toValue(schema, raw) {
  if (schema.type === 'boolean') return raw;
  const s = String(raw).trim();
  if (s === '') return undefined;
  if (schema.type === 'number') {
    const n = Number(s);
    return Number.isFinite(n) ? n : s;
  }
  if (schema.list_allowed && s.includes(',')) return s.split(',').map((x) => x.trim()).filter(Boolean);
  return s;
}

export function RuleForm({ rule, namespaceId, onClose, onSaved }) {
  const types = useLoad(() => get('/api/v1/rules/types'));
  const list = ((types.data && types.data.rule_types) || FALLBACK).filter((t) => t.type !== 'matcher');
  const [v, setV] = useState({
    rule_name: rule?.rule_name || '',
    rule_type: rule?.rule_type || 'rate_limit',
    priority: rule?.priority ?? '',
    status: rule ? rule.status !== 0 : true,
  });
  const initial = rule?.rule_config && typeof rule.rule_config === 'object' ? rule.rule_config : {};
  const [cfg, setCfg] = useState(() => {
    const o = {};
    for (const [k, x] of Object.entries(initial)) o[k] = typeof x === 'boolean' ? x : toText(x);
    return o;
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (x) => setV({ ...v, [k]: x });
  const type = list.find((t) => t.type === v.rule_type) || list[0] || FALLBACK[0];
  const schema = type.config_schema || {};

  const submit = async (e) => {
    e.preventDefault();
    const rule_config = {};
    for (const [name, s] of Object.entries(schema)) {
      if (!(name in cfg)) continue;
      const x = toValue(s, cfg[name]);
      if (x !== undefined) rule_config[name] = x;
    }
    const body = { rule_name: v.rule_name, rule_type: v.rule_type, rule_config, status: v.status ? 1 : 0 };
    if (String(v.priority).trim() !== '') body.priority = Number(v.priority);
    setBusy(true);
    setError(null);
    try {
      const r = rule ? await put(`/api/v1/rules/${rule.rule_id}`, body) : await post(`/api/v1/namespaces/${namespaceId}/rules`, body);
      onSaved(r, !rule);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  return (
    <Dialog title={rule ? `Edit rule ${rule.rule_name || rule.rule_id}` : 'New limit rule'} onClose={onClose} wide>
      <form onSubmit={submit} class="form" noValidate>
        <div class="grid2">
          <Field id="rule-name" label="Rule name" name="rule_name" value={v.rule_name} onInput={set('rule_name')} error={error} required />
          <Field id="rule-type" label="Rule type" name="rule_type" value={v.rule_type} onInput={set('rule_type')} error={error}
            options={list.map((t) => [t.type, t.type])} />
          <Field id="rule-priority" label="Priority (lower runs first)" name="priority" type="number" value={v.priority} onInput={set('priority')} error={error} />
          <Field id="rule-active" label="Active" name="status" type="checkbox" value={v.status} onInput={set('status')} error={error} />
        </div>
        {type.description && <p class="muted">{type.description}</p>}
        <fieldset>
          <legend>rule_config</legend>
          <div class="grid2">
            {ordered(schema).map(([name, s]) => {
              const id = fieldId(name);
              const label = name;
              const hint = s.description;
              if (s.type === 'boolean') {
                return (
                  <Field key={`${type.type}-${name}`} id={id} label={label} name={name} type="checkbox" hint={hint}
                    value={cfg[name] === undefined ? !!s.default : cfg[name]} onInput={(x) => setCfg({ ...cfg, [name]: x })} error={error} />
                );
              }
              const opts = s.enum && !s.list_allowed ? [['', s.default !== undefined ? `(default: ${s.default})` : '(none)'], ...s.enum.map((o) => [o, o])] : null;
              return (
                <Field key={`${type.type}-${name}`} id={id} label={label} name={name} hint={hint} required={s.required}
                  type={s.type === 'number' ? 'number' : 'text'} inputMode={s.type === 'number' ? 'decimal' : undefined}
                  step={s.type === 'number' ? 'any' : undefined}
                  options={opts}
                  placeholder={s.default !== undefined ? `default: ${toText(s.default)}` : s.enum ? s.enum.join(' | ') : undefined}
                  value={cfg[name] ?? ''} onInput={(x) => setCfg({ ...cfg, [name]: x })} error={error} />
              );
            })}
          </div>
        </fieldset>
        <FormError error={error} />
        <div class="form-actions">
          <button type="submit" id="rule-save" class="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save rule'}
          </button>
          <button type="button" id="rule-cancel" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
