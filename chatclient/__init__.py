"""chatclient: a client library for the chat protocol, and a terminal client."""
