-- wrk script: GET the QR image of distinct certificates. Every thread cycles through the
-- paths (one a line, written by `vaxpass bench --load-files N`) from its own offset.
--
--   wrk -t2 -c64 -d30s --latency -s tests/perf/load/qr.lua http://127.0.0.1:8089 -- DATA/load/qr_paths.txt

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local paths = {}
local i = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s qr.lua URL -- QR_PATHS_FILE")
  end
  for line in io.lines(path) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  if #paths == 0 then
    error("no QR paths in " .. path)
  end
  i = (id or 0) * 7919 % #paths
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
