-- wrk script: POST the file named by $BODY as JSON.
wrk.method = "POST"
wrk.body = io.open(os.getenv("BODY")):read("*a")
wrk.headers["Content-Type"] = "application/json"
