// Rate-limit accuracy: offers RATE requests/s for DURATION against a
// namespace under a rate_limit rule of LIMIT requests per WINDOW seconds
// (load-tests/ratelimit.yaml: 50 per 1 s, fixed window) and reports what was
// admitted against what the limit allows over the run.
// Env: BASE_URL, API_KEY, RATE (default 200), DURATION (default 10s),
// LIMIT (default 50), WINDOW (default 1), TENANT (default bench).
import http from "k6/http";
import { Counter } from "k6/metrics";
import { BASE, KEY, chatBody, headers } from "./lib.js";

const admitted = new Counter("admitted");
const denied = new Counter("denied");
const other = new Counter("other_status");
const rate = Number(__ENV.RATE || 200);
const seconds = parseInt(__ENV.DURATION || "10s", 10);
const limit = Number(__ENV.LIMIT || 50);
const windowS = Number(__ENV.WINDOW || 1);

export const options = {
  scenarios: {
    offered: {
      executor: "constant-arrival-rate",
      rate,
      timeUnit: "1s",
      duration: `${seconds}s`,
      preAllocatedVUs: 50,
      maxVUs: 200,
    },
  },
};

const params = { headers: headers(KEY, __ENV.TENANT || "bench"), responseCallback: http.expectedStatuses(200, 429) };

export default function () {
  const r = http.post(`${BASE}/v1/chat/completions`, chatBody(false), params);
  if (r.status === 200) admitted.add(1);
  else if (r.status === 429) denied.add(1);
  else other.add(1);
}

export function handleSummary(data) {
  const get = (n) => (data.metrics[n] ? data.metrics[n].values.count : 0);
  const a = get("admitted"), d = get("denied"), o = get("other_status");
  // Fixed windows are aligned: a run of S seconds touches up to S/W + 1 of
  // them (partial first and last), so the limit admits at most that many
  // times LIMIT; a steady state admits LIMIT per window.
  const windows = Math.ceil(seconds / windowS) + 1;
  const allowed = limit * windows;
  const steady = (limit * seconds) / windowS;
  return {
    stdout:
      "k6 rate-limit accuracy\n" +
      `offered ${a + d + o} requests (${rate}/s for ${seconds}s) against ${limit} per ${windowS}s\n` +
      `admitted ${a}, denied 429 ${d}, other ${o}\n` +
      `the limit allows at most ${allowed} in the ${windows} windows the run touched: ${a <= allowed ? "held" : "EXCEEDED"} ` +
      `(admitted ${((100 * a) / allowed).toFixed(1)}% of that bound; ${((100 * a) / steady).toFixed(1)}% of limit x duration = ${steady})\n`,
  };
}
