"""sandcell: what code running in a sandcell kernel may use of the kernel itself.

Importable under every security profile (the kernel's own helper modules are not):

    from sandcell import Comm, register_comm_target, progress

    c = Comm(target_name="my-widget", data={"value": 1})
    c.send({"value": 2}, buffers=[b"raw bytes"])

    for i, item in enumerate(items):
        work(item)
        progress((i + 1) / len(items), "item %d of %d" % (i + 1, len(items)))

``progress(fraction, message=None)`` reports how far the running cell is.
``fraction`` is a real number, clamped to 0..1 (NaN is a ValueError);
``message`` is None or a string (cut to 500 characters).  The first call in a
cell shows a progress line (``display_data``), later calls in that cell
update it (``update_display_data``), with the MIME type
``application/vnd.sandcell.progress+json`` ({"fraction", "message"}) and a
text line "[#####-----] 50% message".  The task API turns these into
``progress`` events.  At most 10 calls a second are sent; the first call of
a cell, a call with fraction 1.0 and a call that changes the message are
always sent.  Returns None.
"""

import os
import time

import sandcell_kernel
from sandcell_kernel import Comm, register_comm_target

__all__ = ["Comm", "register_comm_target", "progress"]

# Code objects compiled from this file carry this filename; tracebacks shown
# to the user drop frames that come from our modules.
_THIS_FILE = (lambda: 0).__code__.co_filename

PROGRESS_MIME = "application/vnd.sandcell.progress+json"
_MAX_MESSAGE = 500
_MIN_INTERVAL = 0.1          # seconds: at most 10 updates a second
_BAR = 10                    # characters of the text bar


class _Progress:
    """The progress line of the current cell."""
    cell = None              # sandcell_kernel's cell serial it belongs to
    display_id = None
    last_sent = 0.0          # time.monotonic() of the last message sent
    last_message = None


def _fraction(value):
    if isinstance(value, bool) or not _is_real(value):
        raise TypeError("progress() fraction must be a real number, not %s"
                        % type(value).__name__)
    f = float(value)
    if f != f:
        raise ValueError("progress() fraction must not be NaN")
    return min(1.0, max(0.0, f))


def _is_real(value):
    if isinstance(value, (int, float)):
        return True
    import numbers
    return isinstance(value, numbers.Real)


def _text(fraction, message):
    filled = int(fraction * _BAR + 1e-9)
    line = "[%s%s] %d%%" % ("#" * filled, "-" * (_BAR - filled),
                            int(fraction * 100 + 1e-9))
    return line + " " + message if message else line


def progress(fraction, message=None):
    """Report the cell's progress: fraction from 0 to 1, an optional
    message.  See the module's documentation."""
    f = _fraction(fraction)
    if message is not None:
        if not isinstance(message, str):
            raise TypeError("progress() message must be a str or None, not %s"
                            % type(message).__name__)
        message = str.__str__(message)[:_MAX_MESSAGE]
    now = time.monotonic()
    state = _Progress
    cell = sandcell_kernel._S.cell_serial
    first = state.cell != cell or state.display_id is None
    if (not first and f < 1.0 and message == state.last_message
            and now - state.last_sent < _MIN_INTERVAL):
        return None
    if first:
        state.cell = cell
        state.display_id = "sandcell-progress-%s-%d" % (os.urandom(6).hex(), cell)
    state.last_sent = now
    state.last_message = message
    sandcell_kernel.publish(
        "display_data" if first else "update_display_data",
        {"data": {PROGRESS_MIME: {"fraction": f, "message": message},
                  "text/plain": _text(f, message)},
         "metadata": {},
         "transient": {"display_id": state.display_id}})
    return None
