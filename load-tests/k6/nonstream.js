// Non-streaming chat completions at a constant number of virtual users.
// Env: BASE_URL, API_KEY, VUS (default 16), DURATION (default 10s), TENANT (x-tenant).
import http from "k6/http";
import { check } from "k6";
import { BASE, KEY, chatBody, headers, line } from "./lib.js";

export const options = {
  vus: Number(__ENV.VUS || 16),
  duration: __ENV.DURATION || "10s",
  summaryTrendStats: ["avg", "p(50)", "p(90)", "p(99)", "max"],
  thresholds: { http_req_failed: ["rate<0.01"] },
};

const params = { headers: headers(KEY, __ENV.TENANT || "bench") };

export default function () {
  const r = http.post(`${BASE}/v1/chat/completions`, chatBody(false), params);
  check(r, { "status 200": (x) => x.status === 200, "has choices": (x) => x.body && x.body.includes("choices") });
}

export function handleSummary(data) {
  return {
    stdout:
      "k6 non-streaming\n" +
      line(data, "http_reqs", "") +
      line(data, "http_req_duration", " ms") +
      line(data, "http_req_failed", ""),
  };
}
