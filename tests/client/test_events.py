"""Events reach the callback and the queue, in order; replies never do."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from chatclient import EventsDropped
from chatproto import DirectMessage, Event, MemberJoined, RoomMessage, Say
from tests.client.conftest import ClientFactory, Recorder, next_of


def test_callback_and_iterator_see_the_same_events(make_client: ClientFactory) -> None:
    recorder = Recorder()
    alice = make_client("alice", on_event=recorder)
    bob = make_client("bob")
    alice.join("lobby")
    bob.join("lobby")
    sent = [bob.say("lobby", f"line {i}") for i in range(3)]
    bob.dm("alice", "psst")
    own = alice.say("lobby", "mine")  # a reply: not an event
    queued = [alice.next_event(5) for _ in range(5)]
    assert isinstance(queued[0], MemberJoined)
    assert [e.id for e in queued[1:4] if isinstance(e, RoomMessage)] == [m.id for m in sent]
    assert isinstance(queued[4], DirectMessage) and queued[4].text == "psst"
    assert recorder.events == queued
    assert own.id not in {e.id for e in recorder.of(RoomMessage)}
    assert alice.dropped_events == 0


def test_events_iterator_stops_when_idle(make_client: ClientFactory) -> None:
    alice = make_client("alice")
    assert list(alice.events(timeout=0.05)) == []


def test_full_queue_drops_new_events_and_says_so(make_client: ClientFactory) -> None:
    recorder = Recorder()
    alice = make_client("alice", on_event=recorder, queue_size=2)
    bob = make_client("bob")
    alice.join("lobby")
    bob.join("lobby")  # event 1: member_joined
    texts = [bob.say("lobby", f"m{i}").text for i in range(4)]  # events 2 to 5
    recorder.wait_for(lambda events: len(events) == 5)
    assert alice.dropped_events == 3
    assert isinstance(alice.next_event(1), MemberJoined)
    assert next_of(alice, RoomMessage, timeout=1).text == texts[0]
    assert alice.next_event(1) == EventsDropped(3)
    bob.say("lobby", "after the gap")
    assert next_of(alice, RoomMessage, timeout=5).text == "after the gap"
    assert len(recorder.of(RoomMessage)) == 5  # the callback saw everything


def test_concurrent_say_from_many_threads(make_client: ClientFactory) -> None:
    alice, watcher = make_client("alice"), make_client("watcher")
    alice.join("lobby")
    watcher.join("lobby")
    threads, per_thread = 4, 25
    echoes: dict[int, list[RoomMessage]] = {}
    start = threading.Barrier(threads)

    def talk(n: int) -> None:
        start.wait()
        echoes[n] = [alice.say("lobby", f"t{n}-{i}") for i in range(per_thread)]

    workers = [threading.Thread(target=talk, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    all_echoes = [m for ms in echoes.values() for m in ms]
    assert len(all_echoes) == threads * per_thread
    for n, mine in echoes.items():  # each thread's messages, in its order, all echoed
        assert [m.text for m in mine] == [f"t{n}-{i}" for i in range(per_thread)]
        assert [m.id for m in mine] == sorted(m.id for m in mine)
    refs = [m.ref for m in all_echoes]
    assert len(set(refs)) == len(refs)  # request ids unique
    assert len({m.id for m in all_echoes}) == len(all_echoes)  # message ids unique
    seen = [next_of(watcher, RoomMessage) for _ in all_echoes]
    assert [m.id for m in seen] == sorted(m.id for m in all_echoes)  # everyone, in order


def test_submit_callback_runs_in_order_with_events(make_client: ClientFactory) -> None:
    order: list[str] = []
    done = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, RoomMessage):
            order.append(f"event {event.text}")

    alice = make_client("alice", on_event=on_event)
    bob = make_client("bob")
    alice.join("lobby")
    bob.join("lobby")

    def replied(future: Future[Event]) -> None:
        reply = future.result()
        assert isinstance(reply, RoomMessage)
        order.append(f"reply {reply.text}")
        done.set()

    bob.say("lobby", "before")
    alice.submit(Say(room="lobby", text="mine"), replied)
    assert done.wait(5)
    bob.say("lobby", "after")
    next_of(alice, RoomMessage, text="after")
    assert order == ["event before", "reply mine", "event after"]
