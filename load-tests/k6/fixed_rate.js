// Chat completions at a fixed arrival rate (not a fixed number of users):
// latency percentiles that do not depend on how fast the gateway answers.
// Env: BASE_URL, API_KEY, RATE (requests/s, default 1000), DURATION (10s).
import http from "k6/http";
import { check } from "k6";
import { BASE, KEY, chatBody, headers, line } from "./lib.js";

export const options = {
  scenarios: {
    fixed: {
      executor: "constant-arrival-rate",
      rate: Number(__ENV.RATE || 1000),
      timeUnit: "1s",
      duration: __ENV.DURATION || "10s",
      preAllocatedVUs: 64,
      maxVUs: 256,
    },
  },
  summaryTrendStats: ["avg", "p(50)", "p(90)", "p(99)", "max"],
  thresholds: { http_req_failed: ["rate<0.01"] },
};

const params = { headers: headers(KEY, "bench") };

export default function () {
  const r = http.post(`${BASE}/v1/chat/completions`, chatBody(false), params);
  check(r, { "status 200": (x) => x.status === 200 });
}

export function handleSummary(data) {
  return {
    stdout:
      "k6 fixed rate\n" +
      line(data, "http_reqs", "") +
      line(data, "http_req_duration", " ms") +
      line(data, "http_req_failed", "") +
      line(data, "dropped_iterations", ""),
  };
}
