-- wrk script: each request posts the next body of the file named by VOX_BODIES (one JSON body
-- per line), so that every callback id is new. Thread n of VOX_THREADS posts bodies n,
-- n + VOX_THREADS, ...; benchmarks/over_http.py checks that no body was posted twice. When
-- VOX_DELAY_MS is set, each connection waits that long before each request: a paced load for
-- measuring latency rather than the highest rate.
local threads = 0

function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end

function init(args)
  bodies = {}
  for line in io.lines(os.getenv("VOX_BODIES")) do
    bodies[#bodies + 1] = line
  end
  step = tonumber(os.getenv("VOX_THREADS"))
  index = first
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

-- Defined only for a paced load: wrk schedules every request through a timer once a script
-- has a delay function.
local pause = tonumber(os.getenv("VOX_DELAY_MS") or "")
if pause then
  function delay()
    return pause
  end
end

function request()
  local body = bodies[(index % #bodies) + 1]
  index = index + step
  return wrk.format(nil, nil, nil, body)
end
