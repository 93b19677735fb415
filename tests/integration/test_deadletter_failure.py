"""``dead_letter=DIR`` when the dead-letter write fails: nothing marked delivered, typed
error, no temporary file left, and the message comes again.

The failures are real: a file-size limit (``RLIMIT_FSIZE``, what the kernel enforces for a
full quota: every write past it fails with ``EFBIG``) in a child process, and a folder
that has become a plain file.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fink_client.consumer import AlertConsumer
from fink_client.errors import DeadLetterError
from tests.faults.helpers import encode_all, publish_spread, unique_alerts
from tests.helpers import unique_group

pytestmark = pytest.mark.integration

# Child process: a consumer whose dead-letter writes fail past 1 KB per file.
CHILD = r"""
import json, resource, signal, sys
from fink_client.consumer import AlertConsumer
from fink_client.errors import DeadLetterError

config, folder, mode = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
consumer = AlertConsumer([config.pop("topic")], config, on_error="skip", dead_letter=folder)
resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
out = {}
try:
    consumer.poll(30)
    out["error"] = None
except Exception as exc:
    out.update(error=type(exc).__name__, text=str(exc), path=getattr(exc, "path", None),
               topic=getattr(exc, "topic", None), partition=getattr(exc, "partition", None),
               offset=getattr(exc, "offset", None))
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
if mode == "retry":  # same consumer, space is back: the message comes again
    topic, alert = consumer.poll(30)
    out["next_candid"] = alert["candid"] if alert else None
consumer.close()
print(json.dumps(out))
"""


@pytest.fixture
def poisoned_topic(kafka, topic) -> str:
    """Offset 0: an undecodable 3000-byte message; offset 1: a good alert (candid 1)."""
    (good_value, key), = list(encode_all(unique_alerts(1)))
    bad_value = random.Random(3).randbytes(3000)
    where = publish_spread([(bad_value, key), (good_value, key)], topic, kafka.admin_servers, 1)
    assert where == [(0, 0), (0, 1)]
    return topic


def _hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _run_child(config: dict, folder: Path, mode: str) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(config), str(folder), mode],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _check_failure(out: dict, topic: str, folder: Path) -> None:
    assert out["error"] == "DeadLetterError", out
    assert (out["topic"], out["partition"], out["offset"]) == (topic, 0, 0)
    assert out["path"] == str(folder) and str(folder) in out["text"]
    assert _hidden_files(folder) == []  # no temporary file left behind
    assert not list(folder.glob("*.json"))


def test_failed_dead_letter_write_redelivers_in_the_same_consumer(
        poisoned_topic, alice_config, tmp_path) -> None:
    folder = tmp_path / "dead"
    config = dict(alice_config(unique_group()), topic=poisoned_topic)
    out = _run_child(config, folder, "retry")
    assert out["next_candid"] == 1
    entries = sorted(p.name for p in folder.iterdir())
    assert entries == [f"{poisoned_topic}-0-0.{s}" for s in ("json", "key", "value")]
    assert (folder / f"{poisoned_topic}-0-0.value").stat().st_size == 3000


def test_failed_dead_letter_write_is_not_committed(poisoned_topic, alice_config, tmp_path) -> None:
    folder = tmp_path / "dead"
    group = unique_group()
    config = dict(alice_config(group), topic=poisoned_topic)
    _check_failure(_run_child(config, folder, "close"), poisoned_topic, folder)
    # Restart with the same group: the undecodable message comes again and is kept now.
    with AlertConsumer([poisoned_topic], alice_config(group), on_error="skip",
                       dead_letter=folder) as consumer:
        _, alert = consumer.poll(30)
    assert alert["candid"] == 1
    meta = json.loads((folder / f"{poisoned_topic}-0-0.json").read_text())
    assert (meta["topic"], meta["partition"], meta["offset"]) == (poisoned_topic, 0, 0)
    assert meta["value_bytes"] == 3000


def test_dead_letter_folder_that_became_a_file(poisoned_topic, alice_config, tmp_path) -> None:
    folder = tmp_path / "dead"
    with AlertConsumer([poisoned_topic], alice_config(unique_group()), on_error="skip",
                       dead_letter=folder) as consumer:
        shutil.rmtree(folder)
        folder.write_text("not a folder")
        with pytest.raises(DeadLetterError) as info:
            consumer.poll(30)
        assert info.value.offset == 0 and info.value.path == str(folder)
        folder.unlink()  # fixed: the same message comes again and is kept
        _, alert = consumer.poll(30)
        assert alert["candid"] == 1
    assert (folder / f"{poisoned_topic}-0-0.value").stat().st_size == 3000
