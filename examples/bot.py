"""A bot on `chatclient.Client`: answers `!time` and greets people who join.

    .venv/bin/python examples/bot.py --host 127.0.0.1 --port 7878 --room lobby

It reconnects by itself if the server restarts, and stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import time
from types import FrameType

from chatclient import Client, ClientError, ClientEvent, Disconnected, Reconnected, ReconnectPolicy
from chatproto import MemberJoined, RoomMessage


def react(client: Client, event: ClientEvent) -> None:
    # Our own messages come back as replies to `say`, never as events, so
    # the bot cannot end up answering itself.
    if isinstance(event, RoomMessage) and event.text.strip() == "!time":
        client.say(event.room, f"{event.nick}: it is {time.strftime('%H:%M:%S %Z')}")
    elif isinstance(event, MemberJoined):
        client.say(event.room, f"Welcome, {event.nick}!")
    elif isinstance(event, Disconnected | Reconnected):
        print(event, flush=True)  # the library telling us about the connection


def stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # leave the loop below the same way for Ctrl-C and kill


def main() -> int:
    p = argparse.ArgumentParser(description="Answer !time and greet newcomers.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7878)
    p.add_argument("--nick", default="timebot")
    p.add_argument("--room", default="lobby")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, stop)

    # With a reconnect policy, a dropped connection is re-established: same
    # nick, same rooms, and the room messages missed meanwhile replayed once.
    policy = ReconnectPolicy(initial=0.5, maximum=10.0)
    client = Client(args.nick, host=args.host, port=args.port, reconnect=policy)
    try:
        client.connect()
        client.join(args.room)
    except ClientError as exc:  # e.g. ChatError with .code "nick_in_use", or no server
        print(f"cannot start: {exc}", flush=True)
        client.close()
        return 1
    with client:  # on the way out: say `bye` and stop the client's thread
        try:
            print(f"{client.nickname} is in #{args.room}", flush=True)
            # Events arrive in order; the loop ends when the client ends for good.
            for event in client.events():
                try:
                    react(client, event)
                except ClientError as exc:  # refused, or the connection dropped meanwhile
                    print(f"could not answer: {exc}", flush=True)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
