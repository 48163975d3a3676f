"""Files a node or the simulator reads: node config.toml (NodeConfig.load), genesis.toml
(GenesisConfig.load) and simulator scenarios (consensus.sim.load_toml). Whatever the
file holds, the loader gives a config whose fields have their declared types, or its
own one-line error (ConfigError, GenesisError, ScenarioError) -- never a TypeError,
AttributeError or RecursionError from deep inside, and never a value that only fails
later (a float NaN timeout, a port that is a list).

Inputs start from valid documents: values swapped for other TOML types (NaN, inf, huge
and negative integers, dates, arrays, inline tables, nesting thousands deep), keys and
tables removed, added or turned into arrays of tables, and byte edits of the text
(including invalid UTF-8).
"""

from __future__ import annotations

import datetime
import math
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.sim import Scenario, ScenarioError, load_toml
from consensus.sim.engine import Simulation
from node.ledger.genesis import GenesisConfig, GenesisError
from node.runtime.config import ConfigError, NodeConfig
from node.transport.settings import MqttSettings, TcpSettings
from tests.fuzz.support import fuzz, mutated_bytes, time_limit

_DIR = Path(tempfile.mkdtemp(prefix="ledgerlab-fuzz-config-"))


# -- a small TOML writer (the standard library only reads TOML) --------------------------------


def _key(k: str) -> str:
    if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii():
        return k
    return _string(k)


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("?")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, datetime.datetime | datetime.date | datetime.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Deep):
        return v.text
    raise TypeError(type(v).__name__)


class Deep:
    """A value nested ``depth`` arrays (or inline tables) deep, written as text."""

    def __init__(self, depth: int, table: bool) -> None:
        self.text = ("{a = " * depth + "1" + "}" * depth) if table else "[" * depth + "]" * depth


def to_toml(doc: dict[str, Any]) -> str:
    lines = []
    for k, v in doc.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            lines.append(f"{_key(k)} = {toml_value(v)}")
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{_key(k)}]")
            lines += [f"{_key(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
        elif _is_table_array(v):
            for item in v:
                lines.append(f"[[{_key(k)}]]")
                lines += [f"{_key(kk)} = {toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


# -- mutations of a document -------------------------------------------------------------------

_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, -(2**63), 65535, 65536, 10**18]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "127.0.0.1:0",
            "[::1]:1",
            "h:99999",
            "::1:1",
            "x" * 300,
            "tcp",
            "mqtt",
            "memory",
            "debug",
            "rocksdb",
            "0x" + "ab" * 64,
            "ab" * 20,
        ]
    ),
    st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
    st.dates(),
    st.times(),
)
_toml_values = st.one_of(
    _scalars,
    st.recursive(
        _scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["a", "b", "node", "x"]), inner, max_size=2)
        ),
        max_leaves=6,
    ),
    st.builds(Deep, st.integers(50, 3000), st.booleans()),
)


@st.composite
def mutated_doc(draw: st.DrawFn, doc: dict[str, Any], known_keys: list[str]) -> str:
    """``doc`` with 1..4 edits, as TOML text (then maybe byte-edited)."""
    doc = _copy(doc)
    for _ in range(draw(st.integers(1, 4))):
        tables = [k for k, v in doc.items() if isinstance(v, dict)] + [None]
        table_name = draw(st.sampled_from(tables))
        table = doc if table_name is None else doc[table_name]
        op = draw(
            st.sampled_from(
                ["set", "set", "set", "delete", "new_key", "table_value", "table_array"]
            )
        )
        keys = [k for k in table if not isinstance(table[k], dict)]
        if op == "set":
            key = (
                draw(st.sampled_from(keys + known_keys))
                if keys
                else draw(st.sampled_from(known_keys))
            )
            table[key] = draw(_toml_values)
        elif op == "delete" and table:
            del table[draw(st.sampled_from(sorted(table)))]
        elif op == "new_key":
            table[draw(st.sampled_from(["unknown", "peers", "listen", "x-y", "é"]))] = draw(
                _toml_values
            )
        elif op == "table_value" and table_name is not None:
            doc[table_name] = draw(_scalars)
        elif op == "table_array" and table_name is not None:
            doc[table_name] = [doc[table_name], {}]
    text = to_toml(doc)
    if draw(st.integers(0, 4)) == 0:
        return draw(mutated_bytes(text.encode())).decode("utf-8", "surrogateescape")
    return text


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def write(name: str, text: str) -> Path:
    path = _DIR / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


def loads_or(errors: tuple[type[Exception], ...], load: Callable[[Path], Any], path: Path) -> Any:
    try:
        return load(path)
    except errors:
        return None


# -- node config -------------------------------------------------------------------------------

_NODE_DOC = tomllib.loads(
    NodeConfig(
        home=_DIR,
        peers=("127.0.0.1:30301", "[::1]:30302"),
        blacklist=("ab" * 64,),
        mqtt_username="u",
        mqtt_password="p",
        mqtt_tls_ca="ca.pem",
    ).to_toml()
)
_NODE_DOC["p2p"]["max_frame_size"] = 2048
_NODE_DOC["mqtt"]["qos_unicast"] = 1
_NODE_KEYS = sorted(
    {k for t in _NODE_DOC.values() if isinstance(t, dict) for k in t}
    | {
        "handshake_timeout",
        "inbox_capacity",
        "backoff_max",
        "max_batch_delay_ms",
        "tls_insecure",
        "client_id",
    }
)

_STR_FIELDS = (
    "name",
    "log_level",
    "transport",
    "p2p_listen",
    "mqtt_broker",
    "rpc_listen",
    "storage_backend",
)
_INT_FIELDS = (
    "txpool_capacity",
    "tick_ms",
    "seal_max_wait_ms",
    "gossip_max_batch",
    "gossip_max_delay_ms",
    "sync_batch",
)


def check_node_config(cfg: NodeConfig) -> None:
    """What loaded has the types the node relies on."""
    for name in _STR_FIELDS:
        assert type(getattr(cfg, name)) is str, (name, getattr(cfg, name))
    for name in _INT_FIELDS:
        assert type(getattr(cfg, name)) is int, (name, getattr(cfg, name))
    for name in ("mqtt_username", "mqtt_password", "mqtt_tls_ca"):
        assert getattr(cfg, name) is None or type(getattr(cfg, name)) is str, name
    for name in ("genesis", "conf_dir", "data_dir"):
        assert isinstance(getattr(cfg, name), Path), name
    assert cfg.log_file is None or isinstance(cfg.log_file, Path)
    assert all(type(p) is str for p in cfg.peers + cfg.blacklist)
    assert isinstance(cfg.tcp, TcpSettings) and isinstance(cfg.mqtt, MqttSettings)
    for settings in (cfg.tcp, cfg.mqtt):
        for field in settings.__dataclass_fields__:
            value = getattr(settings, field)
            assert not (isinstance(value, float) and not math.isfinite(value)), (field, value)


@pytest.mark.timeout(time_limit(120))
@fuzz(300)
@given(mutated_doc(_NODE_DOC, _NODE_KEYS))
def test_node_config_loads_or_says_config_error(text: str) -> None:
    cfg = loads_or((ConfigError,), NodeConfig.load, write("config.toml", text))
    if cfg is not None:
        check_node_config(cfg)


# -- genesis -----------------------------------------------------------------------------------

_GENESIS_DOC = tomllib.loads(
    GenesisConfig(
        sealers=tuple(bytes([i]) * 64 for i in range(1, 5)),
        observers=(b"\x09" * 64,),
        asset_admins=(b"\x01" * 20,),
        governors=(b"\x02" * 20,),
        timestamp=1_700_000_000_000,
    ).to_toml()
)
_GENESIS_KEYS = [
    "chain_id",
    "group_id",
    "timestamp",
    "sealers",
    "observers",
    "admins",
    "governors",
    "tx_count_limit",
    "consensus_timeout",
    "leader_period",
]


@pytest.mark.timeout(time_limit(120))
@fuzz(300)
@given(mutated_doc(_GENESIS_DOC, _GENESIS_KEYS))
def test_genesis_loads_or_says_genesis_error(text: str) -> None:
    genesis = loads_or((GenesisError,), GenesisConfig.load, write("genesis.toml", text))
    if genesis is not None:
        assert GenesisConfig.decode(genesis.encode()) == genesis  # a valid, encodable genesis


# -- simulator scenarios -----------------------------------------------------------------------

_SCENARIO_DOC: dict[str, Any] = {
    "nodes": 5,
    "sealers": 4,
    "seed": 7,
    "blocks": 3,
    "txs_per_block": 2,
    "tx_interval_ms": 100.0,
    "timeout_ms": 1000.0,
    "tick_ms": 50.0,
    "backoff_cap": 6,
    "signatures": "fake",
    "max_time_ms": 60000.0,
    "network": {
        "latency_ms": 20.0,
        "jitter_ms": 5.0,
        "drop": 0.01,
        "duplicate": 0.0,
        "reorder": 0.1,
    },
    "partition": [{"groups": [[0, 1]], "start_ms": 1000.0, "heal_ms": 5000.0}],
    "crash": [{"node": 2, "at_ms": 800.0, "restart_ms": 4000.0}],
    "byzantine": [{"node": 3, "behaviour": "double-vote"}],
    "membership": [{"height": 2, "op": "add", "node": 4}],
}
_SCENARIO_KEYS = [
    "nodes",
    "sealers",
    "seed",
    "blocks",
    "txs_per_block",
    "tx_interval_ms",
    "timeout_ms",
    "tick_ms",
    "backoff_cap",
    "leader_period",
    "exec_ms",
    "status_ms",
    "signatures",
    "twins_split",
    "max_time_ms",
    "latency_ms",
    "drop",
    "groups",
    "start_ms",
    "heal_ms",
    "node",
    "at_ms",
    "restart_ms",
    "behaviour",
    "height",
    "op",
    "partition",
    "crash",
    "byzantine",
    "membership",
    "network",
]


@st.composite
def scenario_text(draw: st.DrawFn) -> str:
    doc = _copy(_SCENARIO_DOC)
    if draw(st.booleans()):  # reach into the arrays of tables too
        name = draw(st.sampled_from(["partition", "crash", "byzantine", "membership"]))
        item = doc[name][0]
        item[draw(st.sampled_from([*sorted(item), "node", "extra"]))] = draw(_toml_values)
    return draw(mutated_doc(doc, _SCENARIO_KEYS))


def check_scenario(s: Scenario) -> None:
    """A scenario that loaded can be simulated: finite numbers of the right types."""
    for name in ("nodes", "seed", "blocks", "txs_per_block", "backoff_cap", "leader_period"):
        assert type(getattr(s, name)) is int, name
    numbers = [
        s.timeout_ms,
        s.tick_ms,
        s.exec_ms,
        s.tx_interval_ms,
        s.status_ms,
        s.network.latency_ms,
        s.network.jitter_ms,
        s.network.drop,
        s.network.duplicate,
        s.network.reorder,
    ]
    numbers += [p.start_ms for p in s.partitions] + [p.heal_ms or 0.0 for p in s.partitions]
    numbers += [c.at_ms for c in s.crashes] + [c.restart_ms or 0.0 for c in s.crashes]
    if s.max_time_ms is not None:
        numbers.append(s.max_time_ms)
    assert all(type(x) is float and math.isfinite(x) for x in numbers), numbers
    assert all(type(n) is int for p in s.partitions for g in p.groups for n in g)
    assert all(type(c.node) is int for c in s.crashes)
    assert all(type(n) is int and type(b) is str for n, b in s.byzantine.items())
    assert all(type(m.height) is int and type(m.node) is int for m in s.membership)
    if s.nodes <= 64:
        Simulation(s)  # builds (keys, links, partitions, schedule) without raising


@pytest.mark.timeout(time_limit(120))
@fuzz(300)
@given(scenario_text())
def test_scenario_loads_or_says_scenario_error(text: str) -> None:
    s = loads_or((ScenarioError,), load_toml, write("scenario.toml", text))
    if s is not None:
        check_scenario(s)


# -- regressions and the valid documents themselves ---------------------------------------------


def test_the_seed_documents_load() -> None:
    check_node_config(NodeConfig.load(write("config.toml", to_toml(_NODE_DOC))))
    GenesisConfig.load(write("genesis.toml", to_toml(_GENESIS_DOC)))
    check_scenario(load_toml(write("scenario.toml", to_toml(_SCENARIO_DOC))))


DEEP = "a = " + "[" * 5000 + "]" * 5000 + "\n"


@pytest.mark.parametrize(
    ("load", "error", "name"),
    [
        (NodeConfig.load, ConfigError, "config.toml"),
        (GenesisConfig.load, GenesisError, "genesis.toml"),
        (load_toml, ScenarioError, "scenario.toml"),
    ],
    ids=["node config", "genesis", "scenario"],
)
def test_nesting_thousands_deep_is_the_loaders_error(
    load: Callable[[Path], Any], error: type[Exception], name: str
) -> None:
    """Regression: tomllib recurses per nesting level, so ``a = [[[...]]]`` 500 deep raised
    RecursionError out of all three loaders."""
    with pytest.raises(error):
        load(write(name, DEEP))
    with pytest.raises(error):
        load(write(name, "a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n"))


@pytest.mark.parametrize(
    ("load", "error"),
    [
        (NodeConfig.load, ConfigError),
        (GenesisConfig.load, GenesisError),
        (load_toml, ScenarioError),
    ],
    ids=["node config", "genesis", "scenario"],
)
def test_a_directory_or_unreadable_path_is_the_loaders_error(
    load: Callable[[Path], Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        load(_DIR)  # a directory: IsADirectoryError
    with pytest.raises(error):
        load(_DIR / "missing" / "file.toml")
    bad = write("latin1.toml", "")
    bad.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(error):
        load(bad)
