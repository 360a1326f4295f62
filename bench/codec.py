"""Frames per second through chatproto, for a typical ~100-byte room message.

Decoding is measured the way a server reads: many frames per chunk through
`ServerConnection.receive_data`, which frames, validates and checks the
session rules. Encoding is `encode()` of one `message` event.

    .venv/bin/python bench/codec.py [--frames N] [--chunk BYTES]
"""

from __future__ import annotations

import argparse
import time

from chatproto import (
    ClientConnection,
    Hello,
    Limits,
    RoomMessage,
    Say,
    ServerConnection,
    Welcome,
    encode,
)

_TEXT = "hello everyone, this is a typical line of chat, about this long"


def _decode_rate(frames: int, chunk: int) -> tuple[float, int]:
    server = ServerConnection()
    client = ClientConnection()
    server.receive_data(client.send(Hello(nick="bench")))
    server.send(
        Welcome(
            session="s",
            nick="bench",
            server="bench",
            version="1.0",
            limits=Limits(
                max_frame=65536,
                max_text=4000,
                rate=1.0,
                burst=1,
                history=0,
                ping_interval=30.0,
                ping_timeout=30.0,
            ),
        )
    )
    frame = encode(Say(room="lobby", text=_TEXT))
    per_chunk = max(1, chunk // len(frame))
    data = frame * per_chunk
    rounds = max(1, frames // per_chunk)
    start = time.perf_counter()
    for _ in range(rounds):
        server.receive_data(data)
    elapsed = time.perf_counter() - start
    return rounds * per_chunk / elapsed, len(frame)


def _encode_rate(frames: int) -> tuple[float, int]:
    event = RoomMessage(id=123456, room="lobby", nick="alice", text=_TEXT, ts=1764090000000)
    start = time.perf_counter()
    for _ in range(frames):
        encode(event)
    elapsed = time.perf_counter() - start
    return frames / elapsed, len(encode(event))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500_000)
    parser.add_argument("--chunk", type=int, default=65536, help="bytes per receive_data call")
    args = parser.parse_args()
    rate, size = _decode_rate(args.frames, args.chunk)
    print(
        f"decode+validate (receive_data, {args.chunk}-byte chunks, {size}-byte say): "
        f"{rate:,.0f} frames/s"
    )
    rate, size = _encode_rate(args.frames)
    print(f"encode ({size}-byte message event): {rate:,.0f} frames/s")


if __name__ == "__main__":
    main()
