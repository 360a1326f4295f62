"""chatserver: the threaded reference server for the chat protocol."""
