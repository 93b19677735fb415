"""Hive partitions of alert files: which folder (``key=value/...``) an alert goes to.

``--partition-by`` of ``finkctl transfer``:

- ``none``: every file in the output folder itself;
- ``time``: ``year=YYYY/month=MM/day=DD``, the UTC date of the alert's observation time
  (ZTF ``candidate.jd``, LSST ``diaSource.midpointMjdTai`` converted from TAI, both through
  :func:`fink_client.survey.mjd`);
- ``finkclass`` / ``tnsclass``: the value of that field, as Fink's ZTF data-transfer
  schema carries it (nothing is computed: a schema without the field is refused);
- any other name: a top-level or dotted field (``diaSource.band``). The partition column
  is named after the path with dots replaced by ``_`` (``diaSource_band``), so that it
  never clashes with a top-level column and needs no quoting in Spark SQL.

Values are made safe for paths the way Hive and Spark do it: characters that are not
safe in a path segment are percent-encoded (``SN candidate/Ia`` -> ``SN candidate%2FIa``),
which pyarrow.dataset, DuckDB and Spark decode back; a null or empty value is
``__HIVE_DEFAULT_PARTITION__`` (read back as null). When a partition column also exists
in the data (Fink's ZTF schema has ``year``/``month``/``day``/``finkclass``/``tnsclass``),
the folder value is the data value, so readers see one consistent column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from fink_client import survey
from fink_client.errors import ConfigError, SchemaError

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
TIME_COLUMNS = ("year", "month", "day")
_MJD_EPOCH = dt.datetime(1858, 11, 17, tzinfo=dt.timezone.utc)

# Characters Hive/Spark escape in partition values (plus every control character).
_UNSAFE = frozenset('"#%\'*/:=?\\\x7f{[]^') | frozenset(chr(c) for c in range(0x20))


def escape(value: Any) -> str:
    """A partition value as a safe path segment (Hive percent-encoding; null -> default)."""
    if value is None:
        return NULL_PARTITION
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, bytes):
        text = value.hex()
    else:
        text = str(value)
    if text == "":
        return NULL_PARTITION
    out = "".join(f"%{ord(c):02X}" if c in _UNSAFE else c for c in text)
    if out in (".", ".."):
        out = out.replace(".", "%2E")
    return out


def _field_type(schema: Mapping[str, Any], path: list[str]) -> Any:
    """Avro type at a dotted ``path`` of a record schema, or raise ConfigError."""
    node: Any = schema
    for i, name in enumerate(path):
        record = _record_of(node)
        if record is None:
            raise ConfigError(f"cannot partition by {'.'.join(path)!r}: "
                              f"{'.'.join(path[:i])!r} is not a record", field="partition_by")
        match = [f for f in record["fields"] if f["name"] == name]
        if not match:
            names = ", ".join(f["name"] for f in record["fields"][:20])
            raise ConfigError(
                f"cannot partition by {'.'.join(path)!r}: the schema has no field {name!r}"
                f"{' in ' + '.'.join(path[:i]) if i else ''} (fields: {names}...)",
                field="partition_by",
            )
        node = match[0]["type"]
    return node


def _record_of(node: Any) -> Mapping[str, Any] | None:
    if isinstance(node, list):
        branches = [b for b in node if b != "null"]
        return _record_of(branches[0]) if len(branches) == 1 else None
    if isinstance(node, Mapping):
        if node.get("type") == "record":
            return node
        if isinstance(node.get("type"), (Mapping, list)):
            return _record_of(node["type"])
    return None


def _get(alert: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = alert
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _utc_date(alert: Mapping[str, Any]) -> dt.date | None:
    try:
        mjd = survey.mjd(alert)
    except (TypeError, KeyError, ValueError, SchemaError):
        return None  # no observation time: the null partition
    if mjd != mjd:  # NaN
        return None
    return (_MJD_EPOCH + dt.timedelta(days=mjd)).date()


class Partitioner:
    """Map an alert to its Hive sub-folder (``""`` for ``none``).

    Built from ``--partition-by`` and the Avro schema of the topic, which is checked up
    front so that a typo fails before anything is consumed.
    """

    def __init__(self, spec: str, schema: Mapping[str, Any] | None) -> None:
        self.spec = spec = (spec or "none").strip()
        self.columns: tuple[str, ...] = ()
        self._key: Callable[[Mapping[str, Any]], str]
        self._path: list[str] | None = None  # the field read (for Arrow tables)
        self._survey: str | None = None
        if spec.lower() == "none":
            self._key = lambda alert: ""
        elif spec.lower() == "time":
            if schema is not None:  # time needs a ZTF or LSST alert
                self._survey = survey.detect_survey(schema)
            self.columns = TIME_COLUMNS
            self._key = self._time
        else:
            path = spec.split(".")
            if not all(path):
                raise ConfigError(f"bad --partition-by field {spec!r}", field="partition_by")
            if schema is not None:
                _field_type(schema, path)
            column = "_".join(path)
            self.columns = (column,)
            self._path = path
            self._key = lambda alert: f"{column}={escape(_get(alert, path))}"

    @staticmethod
    def _time(alert: Mapping[str, Any]) -> str:
        day = _utc_date(alert)
        if day is None:
            return "/".join(f"{c}={NULL_PARTITION}" for c in TIME_COLUMNS)
        return f"year={day.year}/month={day.month}/day={day.day}"

    def __call__(self, alert: Mapping[str, Any]) -> str:
        """Relative folder of ``alert`` (``year=2019/month=11/day=13``, ``""``...)."""
        return self._key(alert)

    def folders(self, table: Any) -> list[str]:
        """Folder of each row of an Arrow table of alerts (typed from the schema given at
        construction), reading only the column(s) the partition needs."""
        import pyarrow.compute as pc

        if not self.columns:
            return [""] * table.num_rows
        if self._path is None:  # time: only the observation time, through survey.mjd
            if self._survey is None:
                raise SchemaError("partitioning an Arrow table by time needs the schema")
            top, leaf = _TIME_FIELDS[self._survey]
            times = pc.struct_field(table.column(top), [leaf]).to_pylist()
            return [self._time({top: {leaf: t}, **_SURVEY_STUB[self._survey]}) for t in times]
        column = table.column(self._path[0])
        if len(self._path) > 1:
            column = pc.struct_field(column, self._path[1:])
        name = "_".join(self._path)
        return [f"{name}={escape(v)}" for v in column.to_pylist()]


# Where each survey keeps the observation time, and the other field names that make
# survey.detect_survey recognise a one-field alert.
_TIME_FIELDS = {survey.ZTF: ("candidate", "jd"), survey.LSST: ("diaSource", "midpointMjdTai")}
_SURVEY_STUB: dict[str, dict[str, Any]] = {
    survey.ZTF: {"objectId": None, "candid": None},
    survey.LSST: {"diaObject": None, "prvDiaSources": None},
}


__all__ = ["NULL_PARTITION", "Partitioner", "escape"]
