"""Run every code block of docs/migrating.md, in order, against the embedded broker.

``sh`` blocks are ``finkctl`` command lines, run with the test interpreter's ``finkctl``
(a fresh credentials folder, the password in ``FINK_PASSWORD``); ``python`` blocks run in
one namespace. Both in one temporary folder, with the local broker's servers, alice's
credentials and fresh topics substituted for the page's placeholders. Then the results
the page promises are checked (files written, alerts read back).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset
import pytest

from fink_client import schemas, synth
from fink_client.io import AlertReader
from fink_client.replay import replay
from tests.helpers import FINKCTL, SAMPLES, publish, publish_transfer
from tests.hookhelpers import WebhookServer
from tests.integration.test_tutorial import DOCS, blocks

GUIDE = DOCS / "migrating.md"
TRANSFER_ALERTS = 7


def _commands(code: str) -> list[list[str]]:
    """The ``finkctl`` command lines of an ``sh`` block, as argument lists."""
    lines = [ln for ln in code.splitlines() if ln.strip() and not ln.startswith("#")]
    return [shlex.split(ln) for ln in lines]


def test_guide_blocks_are_all_runnable_and_exist() -> None:
    found = blocks(GUIDE.read_text())
    langs = [lang for lang, _ in found]
    # Every block is run below: a block in another language would escape the test.
    assert set(langs) == {"python", "sh"}
    assert langs.count("python") >= 8 and langs.count("sh") >= 6
    for lang, code in found:
        if lang == "sh":
            for argv in _commands(code):
                assert argv[0] == "finkctl", argv


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    """A real local HTTP server standing in for Slack's incoming webhook."""
    with WebhookServer() as server:
        yield server


def test_guide_runs(kafka, alice_config, tmp_path, monkeypatch, webhook) -> None:
    text = GUIDE.read_text()
    tag = uuid.uuid4().hex[:6]
    lsst_topic = kafka.create_topic(f"fink_early_sn_candidates_lsst-{tag}")
    ztf_topic = kafka.create_topic(f"fink_sn_candidates_ztf-{tag}")
    transfer_topic = f"ftransfer_lsst_2026-03-18_{tag}"
    replay([SAMPLES / "lsst"], lsst_topic, {"bootstrap.servers": kafka.admin_servers},
           loop=2)  # 12 alerts
    assert publish(kafka, ztf_topic, SAMPLES / "ztf" / "fink") == 4
    schema = schemas.load("avro_schema_ftransfer_lsst_2026-03-18")
    publish_transfer(kafka, transfer_topic, schema,
                     list(synth.generate(schema, TRANSFER_ALERTS, seed=5)))

    cfg = alice_config(f"migrating-{tag}")
    substitutions = {
        "localhost:9092": kafka.admin_servers,
        "your_lsst_servers": cfg["bootstrap.servers"],
        "kafka-ztf.fink-broker.org:24499": cfg["bootstrap.servers"],
        "your_username": cfg["username"],
        "your_password": cfg["password"],
        "your_group": cfg["group_id"],
        "ftransfer_lsst_2026-03-18_123456": transfer_topic,
        "fink_early_sn_candidates_lsst": lsst_topic,
        "fink_sn_candidates_ztf": ztf_topic,
        "https://hooks.slack.com/services/T000/B000/XXXX": webhook.url,
    }
    for placeholder in substitutions:  # the page and this test must not drift apart
        assert placeholder in text, placeholder

    config_dir = tmp_path / "config"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINK_")}
    env.update(FINK_CLIENT_CONFIG_DIR=str(config_dir), FINK_PASSWORD=cfg["password"],
               NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    work = tmp_path / "work"
    work.mkdir()
    namespace: dict = {"__name__": "migrating"}
    outputs: list[str] = []
    monkeypatch.chdir(work)
    for i, (lang, code) in enumerate(blocks(text), start=1):
        for old, new in substitutions.items():
            code = code.replace(old, new)
        if lang == "python":
            exec(compile(code, f"{GUIDE.name}, block {i}", "exec"), namespace)
            continue
        for argv in _commands(code):
            run = subprocess.run([*FINKCTL, *argv[1:]], cwd=work, env=env, text=True,
                                 capture_output=True, timeout=180)
            assert run.returncode == 0, (f"block {i}: {shlex.join(argv)} exited "
                                         f"{run.returncode}\n{run.stdout}\n{run.stderr}")
            outputs.append(run.stdout)

    # finkctl auth: both surveys registered, owner-only file, password masked on show.
    creds = next(config_dir.iterdir())
    assert creds.stat().st_mode & 0o077 == 0
    assert set(json.loads(creds.read_text())["surveys"]) == {"lsst", "ztf"}
    assert lsst_topic in outputs[0]  # topics over the plaintext listener, no credentials
    shown = outputs[3]
    assert cfg["group_id"] in shown and cfg["password"] not in shown
    # finkctl topics: the LSST topic is listed; stream: 2 LSST alerts, then 4 saved ZTF ones.
    assert lsst_topic in outputs[4] and lsst_topic in outputs[5]
    assert len(outputs[6].strip().splitlines()) == 2
    saved = AlertReader(work / "alerts").to_list()
    assert sorted(a["candid"] for a in saved) == sorted(
        a["candid"] for a in AlertReader(SAMPLES / "ztf" / "fink").to_list())
    # The data-transfer topic, decoded with its side schema, into Parquet.
    transferred = AlertReader(work / "transfer").to_list()
    assert len(transferred) == TRANSFER_ALERTS and "diaSource" in transferred[0]
    # finkctl transfer: the same alerts again (restarted), as a Hive-partitioned dataset.
    dataset = pyarrow.dataset.dataset(work / "transfer_ds", format="parquet",
                                      partitioning="hive")
    assert dataset.count_rows() == TRANSFER_ALERTS
    assert {"year", "month", "day"} <= set(dataset.schema.names)

    # Bots: the webhook got one Slack-style message per ZTF alert, from the template.
    ztf_ids = sorted(a["objectId"] for a in saved)
    assert sorted(m["text"].split()[0] for m in webhook.requests) == ztf_ids
    assert all("mag=" in m["text"] for m in webhook.requests)

    # Python: upstream's call form, the 3-tuple, poll_and_write, offsets, reader, arrow.
    assert namespace["topic"] == lsst_topic
    assert json.loads(namespace["key"])["type"] == "record"  # the key is Fink's schema
    assert len(AlertReader(work / "lsst_alerts").to_list()) == 2
    described = {(p.topic, p.partition): p for p in namespace["offsets"].describe(
        namespace["config"], [lsst_topic])}
    # 2 (CLI) + 1 + 1 + 2 (Python dicts) + what consume_arrow took: nothing lost or twice.
    rows = namespace["arrow_batch"].num_rows
    assert 1 <= rows <= 6
    assert described[(lsst_topic, 0)].committed == 6 + rows
    assert len(namespace["df"]) == 4 and namespace["table"].num_rows == 4
    assert namespace["batch"].num_rows == 4
    assert all(Path(p).is_file() for p in namespace["paths"])
    for png in ("cutouts.png", "lightcurve.png"):
        assert (work / png).stat().st_size > 10_000
