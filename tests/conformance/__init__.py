"""Protocol conformance suite: PROTOCOL.md checked on the wire, against any server."""
