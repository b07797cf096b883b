// Dry-run (#/dry-run): a sample request (method, path, headers one
// `Name: value` a line, body) sent to POST /api/v1/route/namespace and
// POST /api/v1/route/validate; shows the decision, namespace, route
// target, key verdict and each matcher's hit in #dry-result.
import { useState } from 'preact/hooks';
import { ApiError, post } from '../lib/api.js';
import { text } from '../lib/format.js';
import { Field } from '../components/Field.jsx';
import { FormError } from '../components/Feedback.jsx';
import { Json } from '../components/Json.jsx';

const METHODS = ['POST', 'GET', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

/** `Name: value` lines → object; throws ApiError("headers: ...") on a bad line. */
export function parseHeaders(src) {
  const out = {};
  src.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    const at = line.indexOf(':');
    if (at <= 0) throw new ApiError(400, `headers: line ${i + 1} is not “Name: value”: ${line}`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  });
  return out;
}

export function DryRun() {
  const [v, setV] = useState({
    method: 'POST',
    path: '/v1/chat/completions',
    headers: 'content-type: application/json',
    body: '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}',
  });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null);
  const set = (k) => (x) => setV({ ...v, [k]: x });

  const run = async (e) => {
    e.preventDefault();
    setError(null);
    let sample;
    try {
      sample = { method: v.method, path: v.path, headers: parseHeaders(v.headers) };
    } catch (err) {
      setError(err);
      return;
    }
    if (v.body.trim()) {
      try {
        sample.body = JSON.parse(v.body);
      } catch {
        sample.body = v.body;
      }
    }
    setBusy(true);
    try {
      const [ns, val] = await Promise.all([post('/api/v1/route/namespace', sample), post('/api/v1/route/validate', sample)]);
      setResult({ ns, val });
    } catch (err) {
      setError(err);
      setResult(null);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <div class="page-head">
        <h1>Dry-run</h1>
      </div>
      <p class="muted">Where would this request go? Evaluated with the same compiled config as the data plane; nothing is sent upstream.</p>
      <form class="form card" onSubmit={run} noValidate>
        <div class="grid-method">
          <Field id="dry-method" label="Method" name="method" value={v.method} onInput={set('method')} options={METHODS} error={error} />
          <Field id="dry-path" label="Path (with ?query)" name="path" value={v.path} onInput={set('path')} error={error} />
        </div>
        <Field id="dry-headers" label="Headers (one “Name: value” a line)" name="headers" textarea rows={4} value={v.headers}
          onInput={set('headers')} error={error} placeholder={'x-tenant: enterprise\nauthorization: Bearer sk-…'} spellcheck={false} />
        <Field id="dry-body" label="Body (JSON, or raw text)" name="body" textarea rows={6} value={v.body} onInput={set('body')} error={error} spellcheck={false} />
        <FormError error={error} />
        <div class="form-actions">
          <button type="submit" id="dry-run" class="primary" disabled={busy}>
            {busy ? 'Running…' : 'Run dry-run'}
          </button>
        </div>
      </form>
      <div id="dry-result" aria-live="polite">
        {result && <Result ns={result.ns} val={result.val} />}
      </div>
    </section>
  );
}

function Verdict({ d }) {
  if (!d) return null;
  const ok = d.status < 400;
  return (
    <p class="verdict">
      <span class={`badge ${ok ? 'ok' : 'bad'}`} id="dry-decision">
        {d.result} · HTTP {d.status}
      </span>{' '}
      {d.reason}
    </p>
  );
}

function RouteView({ r }) {
  if (!r) return <p class="muted">No route target.</p>;
  const labels = { catalog_model: 'Catalog model', proxy_rule: 'Proxy rule', prefix: 'Prefix route' };
  return (
    <dl class="props" id="dry-route">
      <dt>Kind</dt>
      <dd>{labels[r.type] || r.type}</dd>
      {Object.entries(r)
        .filter(([k]) => k !== 'type')
        .map(([k, x]) => [<dt key={`${k}t`}>{k}</dt>, <dd key={`${k}d`}>{x == null ? '—' : <code>{text(x)}</code>}</dd>])}
    </dl>
  );
}

function KeyVerdict({ k, keyNs }) {
  if (!k) return <p id="dry-key">No API key in the request.</p>;
  if (k.error) {
    return (
      <p id="dry-key">
        <span class="badge bad">refused</span> {k.error}
      </p>
    );
  }
  return (
    <p id="dry-key">
      <span class="badge ok">accepted</span> key <strong>{k.key_name || '(unnamed)'}</strong>
      {k.bound_namespace && <> · bound to namespace <code>{k.bound_namespace}</code></>}
      {keyNs && <> · traffic with this key lands in <code>{keyNs}</code></>}
    </p>
  );
}

const cfg = (c) => (c ? `${c.matcher_type} ${c.match_field || ''} ${c.match_operator} ${c.match_value} → ${c.action}` : '');

function Result({ ns, val }) {
  const info = ns.namespace_info;
  const rules = (val && val.rules) || [];
  return (
    <div class="result card">
      <h2>Decision</h2>
      <Verdict d={ns.decision || val.decision} />
      <h3>Namespace</h3>
      <p id="dry-namespace">
        {ns.target_namespace ? (
          <>
            <code>{ns.target_namespace}</code>
            {info && (
              <>
                {' '}— <a href={`#/namespaces/${info.namespace_id}`}>{info.namespace_name}</a> (id {info.namespace_id}
                {info.status === 0 ? ', inactive' : ''})
              </>
            )}
          </>
        ) : (
          'No namespace.'
        )}
        {ns.matched && ns.rule_id != null && (
          <>
            {' '}· decided by matcher {ns.rule_name || ''} #{ns.rule_id}
            {ns.matched_config && <> (<code>{cfg(ns.matched_config)}</code>)</>}
          </>
        )}
        {!ns.matched && ns.target_namespace && ' · no matcher decided (default, key or route)'}
      </p>
      {ns.message && <p class="muted">{ns.message}</p>}
      <h3>Route target</h3>
      <RouteView r={ns.route || val.route} />
      <h3>API key</h3>
      <KeyVerdict k={ns.api_key || val.api_key} keyNs={ns.key_namespace} />
      <h3>Matchers ({rules.length})</h3>
      {rules.length === 0 ? (
        <p class="muted">No matcher configured.</p>
      ) : (
        <div class="table-scroll">
          <table id="dry-matchers">
            <thead>
              <tr>
                <th scope="col">Matcher</th>
                <th scope="col">Namespace</th>
                <th scope="col">Priority</th>
                <th scope="col">Condition</th>
                <th scope="col">Evaluated</th>
                <th scope="col">Hit</th>
              </tr>
            </thead>
            <tbody>
              {rules.map((m) => (
                <tr key={m.rule_id} data-id={m.rule_id} class={m.decisive ? 'row-hit' : m.evaluated ? undefined : 'row-muted'}>
                  <td>
                    #{m.rule_id} {m.rule_name || ''}
                    {m.status === 0 && ' (inactive)'}
                  </td>
                  <td>
                    <code>{m.namespace_code}</code>
                  </td>
                  <td class="num">{m.priority}</td>
                  <td>
                    <code>{cfg(m.config)}</code>
                  </td>
                  <td>{m.evaluated ? 'yes' : 'skipped'}</td>
                  <td>
                    <span class={`badge ${m.matched ? 'ok' : ''}`}>{m.decisive ? 'hit (decisive)' : m.matched ? 'hit' : 'no'}</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {val.request_data && (
        <>
          <h3>Request as normalised</h3>
          <p>
            <code>
              {val.request_data.method} {val.request_data.path}
              {val.request_data.query ? `?${val.request_data.query}` : ''}
            </code>
          </p>
        </>
      )}
      <details class="raw">
        <summary>Raw answers</summary>
        <h4>POST /api/v1/route/namespace</h4>
        <Json value={ns} label="route namespace answer" />
        <h4>POST /api/v1/route/validate</h4>
        <Json value={val} label="route validate answer" />
      </details>
    </div>
  );
}
