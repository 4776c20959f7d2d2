"""The ceiling of the tracking benchmark: an ASGI app that only answers with the pixel.

It parses nothing, checks nothing and writes nothing; served by the same
server as Patron's tracking app, it shows what the server alone costs here.
"""

PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
HEADERS = [(b"content-type", b"image/gif"), (b"content-length", str(len(PIXEL)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": PIXEL})
