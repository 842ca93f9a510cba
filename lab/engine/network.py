"""The lab's network, made ahead: while a cold `lab up` finishes its certificates and renders its files, which the
network needs neither of (lab/app/lifecycle.py starts it, lab/engine/runtime.py's up() takes it over)."""

from __future__ import annotations

import contextlib
import threading
import time

from lab.core import layout
from lab.core.errors import LabError
from lab.engine.seam import Engine


class NetworkAhead:
    """The lab's network, made in a thread while `lab up` finishes its certificates and renders (it needs neither):
    a tenth of a second less for a cold `lab up`. Started under the lab's lock, after the preflight. join(): the ids
    of the lab's networks before it, which runtime.up's rollback keeps; undo() removes it when `lab up` fails before
    its containers exist. A failure here is left to runtime.up, which makes the network itself and says why not."""

    def __init__(self, engine: Engine, lab: str, name: str, labels: dict[str, str]):
        self.engine, self.lab, self.name, self.labels = engine, lab, name, labels
        self.before: set[str] | None = None
        self.made = False
        self._thread = threading.Thread(target=self._make, name="network-ahead", daemon=True)
        self._asked = False
        self._done = threading.Event()

    def start(self) -> None:
        """Separate from making the object: the caller records it for its clean-up first."""
        self._asked = True
        self._thread.start()

    def _make(self) -> None:
        try:
            theirs = self.engine.networks({layout.LABEL_LAB: self.lab})
            self.before = {n.id for n in theirs}
            if all(n.name != self.name for n in theirs) and self.engine.network(self.name) is None:
                self.engine.create_network(self.name, self.labels)
                self.made = True
        except LabError:
            pass
        finally:
            self._done.set()

    def join(self) -> set[str] | None:
        """Wait until it is done: an Event, never Thread.join(). On Python 3.11 a Ctrl-C landing inside
        Thread.join() can mark a thread that still runs as finished (it releases the thread's own lock: bpo-45274's
        fix), and the clean-up, joining again, would return at once and miss the network being made (seen: one
        `lab up` in three, under load). Also when a Ctrl-C cut start() short: its thread may be on its way."""
        deadline = time.monotonic() + 1
        while self._asked and self._thread.ident is None and time.monotonic() < deadline:
            time.sleep(0.001)
        if self._thread.ident is not None:
            self._done.wait(60)
        return self.before

    def undo(self) -> None:
        self.join()
        with contextlib.suppress(LabError):
            if self.made:
                self.engine.remove_network(self.name)
