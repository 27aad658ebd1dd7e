-- wrk script for the Modelport runtime benchmark.
-- Usage: wrk ... -s post.lua URL -- BODIES_FILE
-- POSTs the JSON bodies in BODIES_FILE (one per line) round robin, one body per request, and
-- prints one JSON line of results when done (latencies in microseconds).

local requests = {}
local next_index = 0

function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   for line in io.lines(args[1]) do
      if #line > 0 then
         table.insert(requests, wrk.format("POST", nil, nil, line))
      end
   end
end

function request()
   next_index = next_index % #requests + 1
   return requests[next_index]
end

function done(summary, latency, _)
   local e = summary.errors
   io.write(string.format(
      '\nMODELPORT-BENCH {"requests": %d, "duration_us": %d, "errors": %d, "non_2xx": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
