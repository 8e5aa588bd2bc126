-- wrk script: POST the file named by $BODY as JSON (with $HEADER_NAME: $HEADER_VALUE when set).
wrk.method = "POST"
wrk.body = io.open(os.getenv("BODY")):read("*a")
wrk.headers["Content-Type"] = "application/json"
if os.getenv("HEADER_NAME") then
    wrk.headers[os.getenv("HEADER_NAME")] = os.getenv("HEADER_VALUE")
end
