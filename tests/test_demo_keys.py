"""lab demo's keyboard, in a real pseudo-terminal, no lab needed: for the whole demo keys are read
one at a time and not echoed (a key pressed while a step runs must not print on the projector),
and the terminal is given back as it was, however the demo ends."""

from __future__ import annotations

import os
import subprocess
import sys
import termios

from helpers import REPO

PROBE = """
import sys, termios
from lab import player
fd = sys.stdin.fileno()
def flags():
    lflag = termios.tcgetattr(fd)[3]
    return "echo" if lflag & termios.ECHO else "noecho", "line" if lflag & termios.ICANON else "key"
print("before", *flags())
try:
    with player._keys_unechoed(True):
        print("during", *flags())
        raise KeyboardInterrupt
except KeyboardInterrupt:
    pass
print("after", *flags())
"""


def test_keys_are_unechoed_during_the_demo_and_the_terminal_restored():
    main, secondary = os.openpty()
    try:
        attrs = termios.tcgetattr(secondary)
        attrs[3] |= termios.ECHO | termios.ICANON
        termios.tcsetattr(secondary, termios.TCSANOW, attrs)
        proc = subprocess.run([sys.executable, "-c", PROBE], stdin=secondary, capture_output=True, text=True,
                              timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(main)
        os.close(secondary)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["before echo line", "during noecho key", "after echo line"], proc.stdout
