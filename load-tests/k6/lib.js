// Shared by the k6 scripts: target URL, key, request body.
// Env: BASE_URL (default http://127.0.0.1:8080), API_KEY (default sk-sluice-dev).
export const BASE = __ENV.BASE_URL || "http://127.0.0.1:8080";
export const KEY = __ENV.API_KEY === undefined ? "sk-sluice-dev" : __ENV.API_KEY;

export function chatBody(stream) {
  return JSON.stringify({
    model: __ENV.MODEL || "gpt-4o-mini",
    stream: stream,
    max_tokens: 16,
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Say hello to the load test." },
    ],
  });
}

export function headers(key, tenant) {
  const h = { "Content-Type": "application/json" };
  if (key) h["Authorization"] = "Bearer " + key;
  if (tenant) h["x-tenant"] = tenant;
  return h;
}

// One line per metric for handleSummary: "name: p50 … p99 …".
export function line(data, name, unit) {
  const m = data.metrics[name];
  if (!m) return `${name}: no samples\n`;
  const v = m.values;
  if (v["p(50)"] !== undefined) {
    return `${name}: avg ${v.avg.toFixed(2)}${unit} p50 ${v["p(50)"].toFixed(2)}${unit} p99 ${(v["p(99)"] || 0).toFixed(2)}${unit}\n`;
  }
  if (v.rate !== undefined && v.count !== undefined) return `${name}: ${v.count} (${v.rate.toFixed(1)}/s)\n`;
  if (v.rate !== undefined) return `${name}: ${(v.rate * 100).toFixed(2)}%\n`;
  return `${name}: ${JSON.stringify(v)}\n`;
}
