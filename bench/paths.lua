-- wrk script: each request takes the next path of the file named by $WRK_PATHS, thread k of n
-- taking paths k, k+n, k+2n ... so that no two threads ask for the same tile. After the last
-- path a thread starts over (the harness counts requests against the list to know whether it did).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(os.getenv("WRK_PATHS")) do
    paths[#paths + 1] = line
  end
  step = tonumber(os.getenv("WRK_THREADS") or "1")
  i = id
end

function request()
  local path = paths[(i % #paths) + 1]
  i = i + step
  return wrk.format("GET", path)
end
