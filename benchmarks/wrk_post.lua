-- wrk: POST a small JSON body with the Authorization header given in WRK_AUTH (may be empty).
wrk.method = "POST"
wrk.body = '{"name":"bench"}'
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

done = function(summary, latency, requests)
  io.write(string.format("STAT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d timeouts=%d connect=%d read=%d write=%d status=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.timeout, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status))
end
