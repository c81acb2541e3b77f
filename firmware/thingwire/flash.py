"""Optional flash copy of the unsent queue (BUFFER_FILE), so readings survive a reset or power loss.

While readings wait (broker or Wi-Fi down) the App saves the ring's timestamped readings to
BUFFER_FILE at most every BUFFER_SAVE_S seconds (flash wears: a 5-minute period writes 288 times a
day at most, and only while offline), and removes the file once the queue is sent. At boot the
saved readings are put back in the ring, oldest first, before the first sample. Saving writes a
temporary file and renames it over the old one, so a reset mid-save keeps the previous copy.
Readings without a time yet (taken before NTP) are not saved: after a reset their tick count means
nothing. A reading sent after the last save and before a reset is sent again after the boot; the
store keeps one copy (it keys readings by series and event time), as with any QoS 1 redelivery.
"""
import json


class FlashBuffer:
    def __init__(self, path, os_module, log=None):
        self.path = path
        self.os = os_module
        self.log = log
        self.saves = 0
        self.errors = 0
        self._saved = False

    def save(self, ring):
        """Writes the ring's stamped readings; True when written."""
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w") as f:
                for e in ring.items():
                    if e[0] is not None:
                        f.write(json.dumps([e[0], e[2]]))
                        f.write("\n")
            self.os.rename(tmp, self.path)
        except Exception as e:  # noqa: BLE001 - a full or failing flash must not stop the loop
            self.errors += 1
            if self.log:
                self.log("flash buffer save failed: %r" % (e,))
            return False
        self.saves += 1
        self._saved = True
        return True

    def load(self, ring, ticks):
        """Puts saved readings back in the ring; returns how many."""
        n = 0
        try:
            f = open(self.path)
        except OSError:
            return 0
        try:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    ts, metrics = json.loads(line)
                except (ValueError, TypeError):
                    self.errors += 1  # a torn last line (reset mid-write of the old format): skip it
                    continue
                if isinstance(ts, int) and isinstance(metrics, dict) and metrics:
                    ring.push([ts, ticks, metrics])
                    n += 1
        finally:
            f.close()
        self._saved = True
        return n

    def clear(self):
        """The queue was sent: the copy is obsolete."""
        if not self._saved:
            return
        try:
            self.os.remove(self.path)
        except OSError:
            pass
        self._saved = False
