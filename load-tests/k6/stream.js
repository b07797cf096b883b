// Streaming chat completions: time to first byte (k6 reads the whole SSE
// body, so the response header time, `waiting`, stands in for time to first
// token; load-tests/ttft.py measures the first content delta itself) and
// output tokens per second per stream (content deltas / stream duration).
// Env: BASE_URL, API_KEY, VUS (default 8), DURATION (default 10s).
import http from "k6/http";
import { check } from "k6";
import { Trend, Counter } from "k6/metrics";
import { BASE, KEY, chatBody, headers, line } from "./lib.js";

const ttfb = new Trend("stream_ttfb", true);
const tokensPerSec = new Trend("stream_tokens_per_s");
const tokens = new Counter("stream_tokens");

export const options = {
  vus: Number(__ENV.VUS || 8),
  duration: __ENV.DURATION || "10s",
  summaryTrendStats: ["avg", "p(50)", "p(90)", "p(99)", "max"],
  thresholds: { http_req_failed: ["rate<0.01"] },
};

const params = { headers: headers(KEY, __ENV.TENANT || "bench") };

export default function () {
  const r = http.post(`${BASE}/v1/chat/completions`, chatBody(true), params);
  const done = r.body && r.body.includes("data: [DONE]");
  check(r, { "status 200": (x) => x.status === 200, "stream ends with [DONE]": () => done });
  if (r.status !== 200 || !r.body) return;
  const deltas = r.body.split("\n").filter((l) => l.startsWith("data: {") && l.includes('"content":"')).length;
  ttfb.add(r.timings.waiting);
  tokens.add(deltas);
  const secs = (r.timings.waiting + r.timings.receiving) / 1000;
  if (secs > 0) tokensPerSec.add(deltas / secs);
}

export function handleSummary(data) {
  return {
    stdout:
      "k6 streaming\n" +
      line(data, "http_reqs", "") +
      line(data, "stream_ttfb", " ms") +
      line(data, "stream_tokens_per_s", " tok/s") +
      line(data, "stream_tokens", "") +
      line(data, "http_req_failed", ""),
  };
}
