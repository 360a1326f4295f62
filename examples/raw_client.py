"""A minimal client on `chatproto` and a plain socket: no chatclient at all.

It says hello, joins a room, sends one line, and prints every frame it
receives until the server acknowledges that line (the echo carries the
`id` of the `say` as `ref`); then it says bye.

    .venv/bin/python examples/raw_client.py --port 7878 --nick raw --room lobby --text "hi"
"""

from __future__ import annotations

import argparse
import socket

from chatproto import (
    Bye,
    ClientConnection,
    Command,
    Error,
    Hello,
    Join,
    Ok,
    Pong,
    RoomMessage,
    Say,
    ServerPing,
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7878)
    p.add_argument("--nick", default="raw")
    p.add_argument("--room", default="lobby")
    p.add_argument("--text", default="hello from a raw socket")
    args = p.parse_args()

    # The state machine checks both sides: hello first, replies that match ids.
    conn = ClientConnection()
    sock = socket.create_connection((args.host, args.port), timeout=10)

    def send(command: Command) -> None:
        data = conn.send(command)  # one frame: compact JSON and a line feed
        print("->", data.decode().rstrip())
        sock.sendall(data)

    # Commands may be pipelined: the server handles them in order after hello.
    send(Hello(id=1, nick=args.nick, client="raw_client example"))
    send(Join(id=2, room=args.room))
    send(Say(id=3, room=args.room, text=args.text))

    said = closed = False
    while not closed:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):  # bytes in, validated events out
            print("<-", event.model_dump_json(exclude_none=True))
            if isinstance(event, ServerPing):
                send(Pong(token=event.token))  # or the server times us out
            elif isinstance(event, Error) and event.ref is not None:
                print(f"error: {event.code}: {event.message}")
                return 1
            elif isinstance(event, RoomMessage) and event.ref == 3:
                said = True  # our line is stored; time to go
                send(Bye(id=4))
            elif isinstance(event, Ok) and event.ref == 4:
                closed = True
    sock.close()
    return 0 if said else 1


if __name__ == "__main__":
    raise SystemExit(main())
