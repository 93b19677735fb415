"""Bad arguments to a connected AlertConsumer, and a bad pattern through the CLI: typed
errors at once (never a hang, never a raw confluent-kafka exception)."""

from __future__ import annotations

import math
import os
import subprocess

import pytest

from fink_client.consumer import MAX_BATCH, AlertConsumer
from fink_client.errors import ConfigError
from tests.helpers import FINKCTL, SAMPLES, publish, raised_within, unique_group

pytestmark = pytest.mark.integration




def test_bad_poll_and_consume_arguments(kafka, topic, alice_config) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "fink")
    group = unique_group()
    with AlertConsumer([topic], alice_config(group)) as consumer:
        exc = raised_within(lambda: consumer.poll(math.nan))
        assert isinstance(exc, ConfigError) and exc.field == "timeout"
        exc = raised_within(lambda: consumer.consume(1, timeout=math.nan))
        assert isinstance(exc, ConfigError) and exc.field == "timeout"
        exc = raised_within(lambda: consumer.consume_arrow(10, timeout=math.nan))
        assert isinstance(exc, ConfigError) and exc.field == "timeout"
        for n in (10**9, 0, -1, True, 2.5):
            for call in (consumer.consume, consumer.consume_arrow):
                with pytest.raises(ConfigError) as info:
                    call(n, timeout=1)
                assert f"{MAX_BATCH:,}" in str(info.value) and info.value.field == "num_alerts"
        _, first = consumer.poll(30)  # still usable after the refused calls
        assert first is not None
    with AlertConsumer([topic], alice_config(group)) as again:  # nothing was lost
        assert again.poll(30)[1]["candid"] != first["candid"]


def test_bad_topic_pattern_in_the_cli_is_one_clear_line(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINK_")}
    env.update(FINK_GROUP_ID="g", FINK_SERVERS="127.0.0.1:1",
               FINK_CLIENT_CONFIG_DIR=str(tmp_path))
    r = subprocess.run([*FINKCTL, "stream", "^([bad", "--connect-timeout", "2"], env=env,
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "KafkaException" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "'^([bad' is not a valid regular expression" in r.stderr
