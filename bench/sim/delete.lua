-- wrk script: DELETE /mqtt/bindings/{id} over the ids listed in the file named by the
-- environment variable IDS_FILE (one per line), each once. Once they run out the requests
-- answer 404 and wrk reports them as non-2xx: seed more bindings or shorten the run.
local ids = {}
local n = 0
local headers = { ["Authorization"] = "Bearer bench" }

init = function(args)
  for line in io.lines(os.getenv("IDS_FILE")) do
    ids[#ids + 1] = line
  end
end

request = function()
  n = n + 1
  return wrk.format("DELETE", "/mqtt/bindings/" .. (ids[n] or "00000000-0000-4000-8000-000000000000"),
                    headers)
end
