"""`python -m chatproto schema` prints the JSON Schema of the protocol's messages."""

from __future__ import annotations

import sys

from chatproto.schema import schema_text


def main(argv: list[str]) -> int:
    if argv != ["schema"]:
        print("usage: python -m chatproto schema", file=sys.stderr)
        return 2
    sys.stdout.write(schema_text())
    return 0


raise SystemExit(main(sys.argv[1:]))
