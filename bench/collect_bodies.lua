-- wrk: POST each request the next body (one JSON per line) of the file named by
-- PATRON_BENCH_BODIES to /t/e, as the web tracker's sendBeacon does.
local bodies = {}
for line in io.lines(os.getenv("PATRON_BENCH_BODIES")) do
  bodies[#bodies + 1] = line
end
local position = math.random(#bodies)
local headers = {
  ["Content-Type"] = "text/plain;charset=UTF-8",
  ["Origin"] = os.getenv("PATRON_BENCH_ORIGIN"),
}

request = function()
  position = position % #bodies + 1
  return wrk.format("POST", "/t/e", headers, bodies[position])
end
