"""kombu 5.6's Redis transport, honouring the restore-sweep options as kombu 5.7 does.

kombu 5.6 knows neither ``unacked_restore_interval`` nor ``unacked_restore_throttle``:
it calls the restore sweep every 10 seconds and scans on every 10th call, so a message
whose visibility timeout has passed waits up to 100 seconds more. This transport adds a
sweep at the interval asked for, and scans on every ``unacked_restore_throttle``-th call.

Selected with ``CELERY_BROKER_TRANSPORT`` on kombu 5.6.
"""

from __future__ import annotations

import contextlib

from .. import redis_transport


class QoS(redis_transport.QoS):
    def restore_visible(self, start=0, num=10, interval=10):
        interval = self.channel.unacked_restore_throttle
        return super().restore_visible(start=start, num=num, interval=interval)


class Channel(redis_transport.Channel):
    QoS = QoS

    #: Seconds between two sweeps, and how many sweeps make one scan (kombu 5.7's).
    unacked_restore_interval = 10
    unacked_restore_throttle = 10

    from_transport_options = (
        *redis_transport.Channel.from_transport_options,
        "unacked_restore_interval",
        "unacked_restore_throttle",
    )


class Transport(redis_transport.Transport):
    Channel = Channel

    def register_with_event_loop(self, connection, loop):
        super().register_with_event_loop(connection, loop)
        # kombu's own sweep runs every 10 s: add one at the interval asked for,
        # replacing the one of a previous connection.
        cycle = self.cycle
        interval = connection.client.transport_options.get(
            "unacked_restore_interval", Channel.unacked_restore_interval
        )
        previous = getattr(cycle, "conveyor_sweep", None)
        if previous is not None:
            previous.cancel()
        if 0 < interval < Channel.unacked_restore_interval:
            cycle.conveyor_sweep = loop.call_repeatedly(interval, self._sweep)

    def _sweep(self):
        # A lost connection is being re-established: the next sweep tries again.
        with contextlib.suppress(*self.connection_errors):
            self.cycle.maybe_restore_messages()
