"""``finkctl show`` (PNG per alert) and ``finkctl schema`` (tree from file or topic)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import fastavro
import matplotlib.image as mpimg
import pytest
from confluent_kafka import Producer

import fink_client
from fink_client import schemas
from fink_client.cli.main import main
from fink_client.replay import replay
from fink_client.viz import CUTOUTS_FIGSIZE, DPI, LIGHTCURVE_FIGSIZE, SUMMARY_FIGSIZE, png_name

SAMPLES = Path(fink_client.__file__).parent / "data" / "samples"
ZTF_FINK = SAMPLES / "ztf" / "fink"
LSST = SAMPLES / "lsst" / "fink-7.4"


def size(figsize: tuple[float, float]) -> tuple[int, int]:
    return round(figsize[1] * DPI), round(figsize[0] * DPI)


def alerts_in(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.rglob("*.avro")):
        with open(path, "rb") as fh:
            out.extend(fastavro.reader(fh))
    return out


@pytest.fixture(autouse=True)
def no_user_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's own credentials file or FINK_* variables."""
    monkeypatch.setenv("FINK_CLIENT_CONFIG_DIR", str(tmp_path / "config"))
    for var in ("FINK_USERNAME", "FINK_PASSWORD", "FINK_GROUP_ID", "FINK_SERVERS"):
        monkeypatch.delenv(var, raising=False)


# -- finkctl show --------------------------------------------------------------------------


def test_show_writes_one_png_per_alert_named_after_it(tmp_path: Path, capsys):
    out = tmp_path / "png"
    assert main(["show", str(SAMPLES), "--out", str(out)]) == 0
    expected = {png_name(a) for a in alerts_in(SAMPLES)}
    assert {p.name for p in out.iterdir()} == expected
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == sorted(expected)
    for p in out.iterdir():
        image = mpimg.imread(p)
        assert image.shape[:2] == size(SUMMARY_FIGSIZE)
        assert image[..., :3].std() > 0.1
    # A rerun rewrites the same files: nothing new, nothing lost.
    assert main(["show", str(SAMPLES), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == expected


@pytest.mark.parametrize(("kind", "figsize"),
                         [("cutouts", CUTOUTS_FIGSIZE), ("lightcurve", LIGHTCURVE_FIGSIZE)])
def test_show_kinds(kind, figsize, tmp_path: Path, capsys):
    assert main(["show", str(LSST), "--out", str(tmp_path), "--kind", kind, "--limit", "2",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["written"]) == 2 and report["failed"] == []
    for p in report["written"]:
        assert p.endswith(f"_{kind}.png")
        assert mpimg.imread(p).shape[:2] == size(figsize)


def test_show_reports_an_undrawable_alert_and_goes_on(tmp_path: Path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(ZTF_FINK / "fink-broker-sample-alert-1.avro", src / "a.avro")
    schema = {"type": "record", "name": "odd", "fields": [{"name": "foo", "type": "int"}]}
    with open(src / "b.avro", "wb") as fh:
        fastavro.writer(fh, schema, [{"foo": 1}])
    out = tmp_path / "out"
    assert main(["show", str(src), "--out", str(out), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert len(report["written"]) == 1
    assert len(report["failed"]) == 1 and "candidate" in report["failed"][0]["error"]
    assert len(list(out.glob("*.png"))) == 1


def test_show_missing_file_is_a_runtime_error(tmp_path: Path, capsys):
    assert main(["show", str(tmp_path / "nope.avro"), "--out", str(tmp_path)]) == 1
    assert "nope.avro" in capsys.readouterr().err


# -- finkctl schema: files and bundled schemas --------------------------------------------


def test_schema_lists_bundled_schemas_without_argument(capsys):
    assert main(["schema", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bundled"] == list(schemas.bundled())


def test_schema_tree_from_avsc_file(capsys):
    path = schemas.bundled()["ztf_alert_3.3"]
    assert main(["schema", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"# file {path}" in text
    assert "├── candidate: record candidate" in text
    assert "│   ├── magpsf: float — Magnitude from PSF-fit photometry [mag]" in text


def test_schema_tree_from_alert_folder_with_depth(capsys):
    assert main(["schema", str(LSST), "--depth", "1", "--no-doc"]) == 0
    text = capsys.readouterr().out
    assert "├── diaSource: record diaSource" in text
    assert "psfFlux" not in text  # nested fields hidden at depth 1
    assert "—" not in text


def test_schema_json_from_bundled_name(capsys):
    assert main(["schema", "avro_schema_ftransfer_lsst_2026-03-18", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    paths = {f["path"]: f for f in report["fields"]}
    assert paths["diaSource.psfFlux"]["type"] == "float | null"
    assert "prvDiaForcedSources.midpointMjdTai" in paths


def test_schema_usage_and_file_errors(tmp_path: Path, capsys):
    assert main(["schema", "ztf_alert_3.3", "--depth", "0"]) == 2
    assert main(["schema", str(tmp_path / "missing.avsc")]) == 1
    assert "missing.avsc" in capsys.readouterr().err
    bad = tmp_path / "bad.avsc"
    bad.write_text("{not json")
    assert main(["schema", str(bad)]) == 1


# -- finkctl schema: from a topic on the embedded broker ----------------------------------


@pytest.fixture
def alice_env(kafka, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """alice's credentials through FINK_* variables; no group id (schema needs none)."""
    monkeypatch.setenv("FINK_USERNAME", "alice")
    monkeypatch.setenv("FINK_PASSWORD", kafka.users["alice"])
    return ["--servers", kafka.bootstrap_servers, "--timeout", "20"]


def test_schema_from_live_topic_key(kafka, topic, alice_env, capsys):
    replay([ZTF_FINK / "fink-broker-sample-alert-1.avro"], topic,
           {"bootstrap.servers": kafka.admin_servers})
    assert main(["schema", topic, *alice_env]) == 0
    text = capsys.readouterr().out
    assert f"# topic {topic}" in text
    assert "├── candidate: record candidate" in text
    assert "cdsxmatch: string" in text


def _produce(kafka, topic: str, key: bytes | None, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": kafka.admin_servers})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(20) == 0


def test_schema_from_version_string_key(kafka, topic, alice_env, capsys):
    _produce(kafka, topic, b"distribution_schema_fink_ztf_2.4_3.3.0", b"\x00payload")
    assert main(["schema", topic, *alice_env, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = schemas.load("distribution_schema_fink_ztf_2.4_3.3.0")
    assert report["name"] == expected["name"]
    assert any(f["path"] == "candidate.jd" for f in report["fields"])


def test_schema_from_data_transfer_side_topic(kafka, alice_env, capsys):
    name = f"ftransfer_lsst_2026-03-18_{uuid.uuid4().hex[:6]}"
    kafka.create_topic(name)
    kafka.create_topic(f"{name}_schema")
    lsst = schemas.load("avro_schema_ftransfer_lsst_2026-03-18")
    _produce(kafka, f"{name}_schema", json.dumps(lsst).encode(), b"")
    _produce(kafka, name, None, b"schemaless bytes")
    assert main(["schema", name, *alice_env, "--depth", "1"]) == 0
    text = capsys.readouterr().out
    assert "├── clf: record clf" in text and "├── diaSource: record diaSource" in text


def test_schema_unknown_topic_lists_available(kafka, topic, alice_env, capsys):
    assert main(["schema", "no-such-topic-here", *alice_env]) == 1
    err = capsys.readouterr().err
    assert "no-such-topic-here" in err and "does not exist" in err and topic in err
