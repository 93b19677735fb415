"""Run every code block of docs/tutorial.md, in order, against the embedded broker.

The tutorial is written for Fink's real servers; this test substitutes the local broker's
addresses, alice's credentials and a fresh topic for the placeholders, runs the blocks in
one namespace in a temporary folder, then checks that every figure the tutorial shows
was produced by the run and copies it into docs/figures/ (so the committed figures are
the ones the code makes).
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

DOCS = Path(__file__).resolve().parents[2] / "docs"
TUTORIAL = DOCS / "tutorial.md"
FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```", re.S | re.M)
FIGURE = re.compile(r"!\[[^\]]*\]\((figures/[^)\s]+\.png)\)")


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block of the markdown text."""
    return FENCE.findall(text)


def test_tutorial_blocks_are_all_python_and_exist():
    found = blocks(TUTORIAL.read_text())
    assert len(found) >= 8
    # Every block is run below: a block in another language would escape the test.
    assert {lang for lang, _ in found} == {"python"}


def test_tutorial_runs_and_makes_its_figures(kafka, topic, alice_config, tmp_path, monkeypatch):
    text = TUTORIAL.read_text()
    cfg = alice_config(f"tutorial-{uuid.uuid4().hex[:8]}")
    lsst_topic = kafka.create_topic(f"t-lsst-{uuid.uuid4().hex[:8]}")
    substitutions = {
        "localhost:9092": kafka.admin_servers,
        "kafka-ztf.fink-broker.org:24499": cfg["bootstrap.servers"],
        "your_lsst_server:port": cfg["bootstrap.servers"],
        "tutorial_rubin": lsst_topic,
        "your_username": cfg["username"],
        "your_password": cfg["password"],
        "your_group": cfg["group_id"],
        "tutorial_rrlyr": topic,
    }
    for placeholder in substitutions:  # the tutorial and this test must not drift apart
        assert placeholder in text, placeholder

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "tutorial"}
    for i, (_, code) in enumerate(blocks(text), start=1):
        for old, new in substitutions.items():
            code = code.replace(old, new)
        exec(compile(code, f"{TUTORIAL.name}, block {i}", "exec"), namespace)

    # What the blocks did: real alerts of both surveys went through the broker (Rubin/LSST
    # first, then ZTF) and back from disk.
    lsst_alert = namespace["lsst_alert"]
    assert lsst_alert["alertId"] == 58804293150441522
    assert namespace["lsst_table"]["alertId"].tolist() == [lsst_alert["alertId"]]
    assert len(namespace["lsst_lc"]) == 5 and set(namespace["lsst_lc"]["band"]) == {"g", "i"}
    assert text.index("tutorial_lsst_summary.png") < text.index("tutorial_summary.png")
    alert = namespace["alert"]
    assert namespace["topic"] == topic
    assert alert["objectId"] == "ZTF18abvcdqu"
    assert namespace["again"][0]["candid"] == alert["candid"]
    assert len(namespace["lc"]) == len(alert["prv_candidates"]) + 1
    assert "candidate.magpsf" in {f.path for f in namespace["magnitude_fields"]}

    figures = FIGURE.findall(text)
    assert len(figures) >= 6 and figures[0] == "figures/tutorial_lsst_summary.png"
    (DOCS / "figures").mkdir(exist_ok=True)
    for ref in figures:
        produced = tmp_path / Path(ref).name
        assert produced.is_file(), f"the tutorial shows {ref} but its code did not make it"
        image = mpimg.imread(produced)
        assert image.shape[0] >= 300 and image.shape[1] >= 700
        assert float(np.std(image[..., :3])) > 0.1
        shutil.copyfile(produced, DOCS / ref)
