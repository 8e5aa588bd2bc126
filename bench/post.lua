-- wrk script: POST the file named by $BODY as JSON (with $HEADER_NAME: $HEADER_VALUE when set);
-- with $BODIES (a file of one JSON body per line), request i sends line i instead (cycling).
wrk.method = "POST"
wrk.body = io.open(os.getenv("BODY")):read("*a")
wrk.headers["Content-Type"] = "application/json"
if os.getenv("HEADER_NAME") then
    wrk.headers[os.getenv("HEADER_NAME")] = os.getenv("HEADER_VALUE")
end
if os.getenv("BODIES") then
    local bodies = {}
    for line in io.lines(os.getenv("BODIES")) do
        bodies[#bodies + 1] = line
    end
    local i = 0
    request = function()
        i = i % #bodies + 1
        return wrk.format(nil, nil, nil, bodies[i])
    end
end
