"""The ceiling of the collect benchmark: an ASGI app that reads a POST body and answers.

It parses nothing, checks nothing and writes nothing; served by the same
server as Patron's tracking app, it shows what the server alone costs here.
"""

BODY = b'{"accepted": 1}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    more = True
    while more:  # the whole body, as an endpoint that reads it must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
