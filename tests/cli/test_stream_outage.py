"""``finkctl stream`` (display and ``--save``) waits out a broker outage longer than
``--connect-timeout``.

A dedicated :class:`LocalKafka` with a kept log folder is stopped while two ``finkctl
stream`` runs read from it (plain display, and ``--save``), left down for three times
their ``--connect-timeout``, then started again on the same data and ports. Both runs
must stay up, print the WARNING lines (brokers lost, then back) when these happen,
and get the alerts published after the restart; SIGINT then ends them with 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from fink_client.io import AlertReader
from fink_client.localkafka import LocalKafka
from tests.faults.helpers import encode_all, publish_spread, unique_alerts, wait_for
from tests.helpers import FINKCTL

pytestmark = [pytest.mark.faults, pytest.mark.integration]

CONNECT_TIMEOUT = 3.0
DOWN_S = 3 * CONNECT_TIMEOUT


class Lines:
    """Lines of a pipe, read in a thread, each with the time it arrived."""

    def __init__(self, pipe) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in iter(pipe.readline, ""):
            self.lines.append((time.monotonic(), line))

    def first(self, text: str) -> float | None:
        """When the first line containing ``text`` arrived."""
        return next((t for t, line in list(self.lines) if text in line), None)

    def text(self) -> str:
        return "".join(line for _, line in list(self.lines))


def test_stream_waits_out_an_outage_longer_than_the_connect_timeout(tmp_path: Path) -> None:
    alerts = list(encode_all(unique_alerts(8)))
    with LocalKafka(users={"alice": "alice-secret"}, log_dir=tmp_path / "kafka") as kafka:
        kafka.allow("alice", topics=["*"], groups=["*"])
        topic = kafka.create_topic(f"outage-cli-{uuid.uuid4().hex[:8]}")
        publish_spread(alerts[:4], topic, kafka.admin_servers, 1)
        base = {k: v for k, v in os.environ.items() if not k.startswith("FINK_")}
        base.update(FINK_CLIENT_CONFIG_DIR=str(tmp_path / "cfg"), FINK_USERNAME="alice",
                    FINK_PASSWORD="alice-secret", FINK_SERVERS=kafka.bootstrap_servers)
        save = tmp_path / "saved"
        common = ["--connect-timeout", str(CONNECT_TIMEOUT),
                  "-X", "reconnect.backoff.max.ms=1000"]
        runs = {
            "display": [*FINKCTL, "stream", topic, *common],
            "save": [*FINKCTL, "stream", topic, "--save", str(save), "--batch-size", "1",
                     "--json", *common],
        }
        procs, out, err = {}, {}, {}
        for name, cmd in runs.items():
            env = {**base, "FINK_GROUP_ID": f"{name}-{uuid.uuid4().hex[:8]}"}
            procs[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
            out[name], err[name] = Lines(procs[name].stdout), Lines(procs[name].stderr)
        try:
            def saved() -> int:
                return len(list(AlertReader(save))) if list(save.glob("*.avro")) else 0

            assert wait_for(lambda: len(out["display"].lines) >= 4 and saved() >= 4, 60), (
                err["display"].text(), err["save"].text())
            down = time.monotonic()
            kafka.stop()  # log dir given: data and ports are kept
            time.sleep(DOWN_S)
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} died in the outage: {err[name].text()}"
            restart = time.monotonic()
            kafka.start()  # returns once ready; a client may see it a moment before that
            up = time.monotonic()
            publish_spread(alerts[4:], topic, kafka.admin_servers, 1)
            assert wait_for(lambda: len(out["display"].lines) >= 8 and saved() >= 8, 90), (
                err["display"].text(), err["save"].text())
            assert wait_for(lambda: all(e.first("reachable again") for e in err.values()), 30)
            for name in runs:
                lost, back = err[name].first("lost the connection"), err[name].first(
                    "reachable again")
                assert lost is not None and down <= lost < restart, (name, err[name].text())
                assert back is not None and restart <= back < up + 30, (name, err[name].text())
                assert "BrokerUnreachableError" not in err[name].text()
            for proc in procs.values():
                proc.send_signal(signal.SIGINT)
            for name, proc in procs.items():
                assert proc.wait(60) == 0, (name, err[name].text())
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
        got = sorted(a["candid"] for a in AlertReader(save))
        assert got == list(range(1, 9))
        shown = [line for _, line in out["display"].lines]
        assert len(shown) == 8
        summary = json.loads(out["save"].lines[-1][1])
        assert summary["type"] == "summary" and summary["alerts"] == 8
