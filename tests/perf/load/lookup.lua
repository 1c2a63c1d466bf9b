-- wrk script: POST /v1/passports/lookup for distinct people. Every thread cycles through
-- the lookup bodies (one JSON body a line, written by `vaxpass bench --load-files N`),
-- starting at its own offset so that threads ask for different people.
--
--   wrk -t2 -c64 -d30s --latency -s tests/perf/load/lookup.lua http://127.0.0.1:8089 -- DATA/load/lookups.jsonl

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local bodies = {}
local i = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s lookup.lua URL -- LOOKUPS_FILE")
  end
  for line in io.lines(path) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  if #bodies == 0 then
    error("no lookup bodies in " .. path)
  end
  i = (id or 0) * 7919 % #bodies
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/passports/lookup", {["Content-Type"] = "application/json"}, bodies[i])
end
