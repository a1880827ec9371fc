#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal (as a user at a terminal would) and
prints what it wrote there, with the terminal's CR LF turned back into LF.

    on_terminal.py COLUMNS COMMAND [ARG ...]

COLUMNS sets the terminal's width (through the COLUMNS variable the command
reads); NO_COLOR=1 keeps colour codes out, so the output can be compared.
Exits with the command's exit code."""
import os, pty, sys

columns, argv = sys.argv[1], sys.argv[2:]
os.environ["COLUMNS"] = columns
os.environ["NO_COLOR"] = "1"
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = bytearray()
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:  # EIO once the command has exited and closed the terminal
        break
    if not data:
        break
    out.extend(data)
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(bytes(out).replace(b"\r\n", b"\n"))
sys.exit(os.waitstatus_to_exitcode(status))
