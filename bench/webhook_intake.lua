-- wrk script for bench/webhook_intake.py: POSTs pre-generated, pre-signed Xero batches.
--
--   wrk -t T -s bench/webhook_intake.lua URL -- BODY_FILE T [DELAY_MS]
--
-- BODY_FILE has one batch per line: "<x-xero-signature>\t<raw JSON body>". Thread t of
-- T sends lines t, t+T, t+2T, ... in order, so no two threads send the same batch; a
-- thread that reaches the end of its share starts again (repeats are no-ops for the
-- inbox) and reports how far it got. done() prints one line "BENCH_JSON {...}" with the
-- figures the Python driver reads. DELAY_MS (optional) paces each connection.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("thread_id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   local thread_count = tonumber(args[2])
   local delay_ms = tonumber(args[3] or "0") or 0
   if delay_ms > 0 then
      -- Only defined when pacing is asked for: wrk calls delay() before every request.
      delay = function() return delay_ms end
   end
   signatures, bodies = {}, {}
   local line_no = 0
   for line in io.lines(path) do
      if line_no % thread_count == thread_id then
         local tab = line:find("\t", 1, true)
         signatures[#signatures + 1] = line:sub(1, tab - 1)
         bodies[#bodies + 1] = line:sub(tab + 1)
      end
      line_no = line_no + 1
   end
   share, ok, not_ok = #bodies, 0, 0
   -- wrk calls request() once on the first thread's state to check for pipelining and
   -- never sends that one: start that thread at -1 so its first body is really sent and
   -- "sent" counts only the requests written (the check takes the share's last body).
   sent = (thread_id == 0) and -1 or 0
end

function request()
   local index = (sent % #bodies) + 1
   sent = sent + 1
   return wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["x-xero-signature"] = signatures[index],
   }, bodies[index])
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      not_ok = not_ok + 1
   end
end

function done(summary, latency, requests)
   local per_thread = {}
   for _, thread in ipairs(threads) do
      per_thread[#per_thread + 1] = string.format(
         '{"thread":%d,"sent":%d,"ok":%d,"not_ok":%d,"share":%d}',
         thread:get("thread_id"), thread:get("sent"), thread:get("ok"), thread:get("not_ok"),
         thread:get("share"))
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},"threads":[%s]}\n',
      summary.duration, summary.requests, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean, table.concat(per_thread, ",")))
end
