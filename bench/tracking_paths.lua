-- wrk: each request takes the next path of the file named by PATRON_BENCH_PATHS.
local paths = {}
for line in io.lines(os.getenv("PATRON_BENCH_PATHS")) do
  paths[#paths + 1] = line
end
local position = math.random(#paths)

request = function()
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end
