// Mixed tenants: three scenarios at once, each its own namespace (x-tenant)
// and key, different rates and a share of streams; results per tenant tag.
// Env: BASE_URL, KEYS (comma list of 3 keys, default API_KEY for all),
// TENANTS (comma list, default bench,team-a,team-b), DURATION (default 10s).
import http from "k6/http";
import { check } from "k6";
import { BASE, KEY, chatBody, headers, line } from "./lib.js";

const tenants = (__ENV.TENANTS || "bench,team-a,team-b").split(",");
const keys = (__ENV.KEYS || [KEY, KEY, KEY].join(",")).split(",");
const duration = __ENV.DURATION || "10s";
const rates = [200, 100, 50];

export const options = {
  scenarios: Object.fromEntries(
    tenants.map((t, i) => [
      t.replace(/[^a-z0-9]/gi, "_"),
      {
        executor: "constant-arrival-rate",
        rate: rates[i % rates.length],
        timeUnit: "1s",
        duration,
        preAllocatedVUs: 20,
        maxVUs: 100,
        env: { TENANT: t, KEY: keys[i % keys.length], STREAM_EVERY: String(i + 2) },
        tags: { tenant: t },
      },
    ])
  ),
  summaryTrendStats: ["avg", "p(50)", "p(99)", "max"],
  thresholds: Object.fromEntries(tenants.map((t) => [`http_req_duration{tenant:${t}}`, ["p(99)<5000"]])),
};

export default function () {
  const stream = __ITER % Number(__ENV.STREAM_EVERY) === 0;
  const r = http.post(`${BASE}/v1/chat/completions`, chatBody(stream), { headers: headers(__ENV.KEY, __ENV.TENANT) });
  check(r, { "status 200": (x) => x.status === 200 });
  if (r.status !== 200 && !reported) {
    reported = true; // once per VU: say why, not how often
    console.warn(`tenant ${__ENV.TENANT}: status ${r.status} ${r.error || ""}`);
  }
}

let reported = false;

export function handleSummary(data) {
  let out = "k6 mixed tenants\n" + line(data, "http_reqs", "") + line(data, "http_req_failed", "");
  for (const t of tenants) out += line(data, `http_req_duration{tenant:${t}}`, " ms").replace("http_req_duration", "latency");
  return { stdout: out };
}
