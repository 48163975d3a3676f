"""What FISCO BCOS 2.x clients need from a chain directory (docs/fisco-clients.md).

``init --channel-port`` (and ``--fisco``) write, like ``build_chain.sh``'s ``sdk/``::

    <dir>/nodeI/conf/channel.crt, channel.key   the node's channel certificate (secp256k1)
    <dir>/sdk/ca.crt, sdk.crt, sdk.key          what an SDK presents to the channel

and ``init --fisco`` adds the client configurations, pointing at that chain::

    <dir>/fisco/caliper/networks/fisco-bcos.json   Caliper 0.5 FISCO BCOS connector network
    <dir>/fisco/caliper/benchmarks/config.yaml     rounds: userAdd, then userTransfer
    <dir>/fisco/caliper/benchmarks/dagtransfer.js  the DagTransfer workload module
    <dir>/fisco/python-sdk/client_config.py        python-sdk settings (channel mode)
    <dir>/fisco/java-sdk/config.toml               java-sdk 2.x settings
    <dir>/fisco/abi/DagTransfer.abi                the precompile's ABI (for SDK consoles)

The Caliper account is the chain's admin key, addressed as FISCO does (Keccak-256).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from consensus.crypto import KeyPair
from node.ledger.fisco import fisco_address as keccak_address
from node.transport.pki import generate_secp256k1_cert

if TYPE_CHECKING:
    from scripts.launcher.layout import Chain

DAGTRANSFER = "0x0000000000000000000000000000000000005002"
SDK_DIR = "sdk"
FISCO_DIR = "fisco"


def channel_cert(agency_dir: Path, conf_dir: Path, *, name: str) -> Path:
    """A node's channel certificate ``conf/channel.crt`` (+ ``channel.key``)."""
    return generate_secp256k1_cert(
        agency_dir, conf_dir, stem="channel", name=f"{name}-channel", unit="channel"
    )


def write_sdk_certs(chain: Chain) -> Path:
    """``sdk/ca.crt``, ``sdk.crt``, ``sdk.key``: the files FISCO's SDKs read."""
    sdk = chain.root / SDK_DIR
    generate_secp256k1_cert(chain.root / "agency", sdk, stem="sdk", name="sdk", unit="sdk")
    shutil.copyfile(chain.root / "ca" / "ca.crt", sdk / "ca.crt")
    return sdk


def fisco_address(key: KeyPair) -> str:
    """The account address FISCO's SDKs derive: last 20 bytes of Keccak-256(public key)."""
    return "0x" + keccak_address(key.public_key).hex()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _group_number(chain: Chain) -> int | str:
    return int(chain.group_id) if chain.group_id.isdigit() else chain.group_id


def caliper_network(chain: Chain, admin: KeyPair) -> dict[str, object]:
    sdk = chain.root / SDK_DIR
    nodes = []
    for n in chain.sealers:
        assert n.channel is not None
        host, channel = _host_port(n.channel)
        nodes.append({"ip": host, "rpcPort": str(n.rpc_port), "channelPort": str(channel)})
    return {
        "caliper": {"blockchain": "fisco-bcos"},
        "fisco-bcos": {
            "config": {"privateKey": admin.secret.hex(), "account": fisco_address(admin)},
            "network": {
                "nodes": nodes,
                "authentication": {
                    "key": str(sdk / "sdk.key"),
                    "cert": str(sdk / "sdk.crt"),
                    "ca": str(sdk / "ca.crt"),
                },
                "groupID": _group_number(chain),
                "timeout": 100000,
            },
            "smartContracts": [
                {
                    "id": "dagtransfer",
                    "address": DAGTRANSFER,
                    "language": "precompiled",
                    "version": "v0",
                }
            ],
        },
        "info": {
            "Version": "ledgerlab (FISCO BCOS 2.x protocol)",
            "Size": f"{len(chain.sealers)} sealers",
            "Distribution": "Single Host",
        },
    }


_BENCHMARK = """\
# Caliper benchmark for a ledgerlab chain (written by `ledgerlab init --fisco`).
# Run from ../ (docs/fisco-clients.md): npx caliper launch manager ...
test:
  name: DagTransfer on ledgerlab
  description: userAdd then userTransfer against the DagTransfer precompile (0x5002)
  workers:
    number: 1
  rounds:
    - label: addUser
      description: userAdd(string,uint256) for fresh users
      txNumber: {users}
      rateControl:
        type: fixed-rate
        opts:
          tps: {tps}
      workload:
        module: benchmarks/dagtransfer.js
        arguments:
          txType: userAdd
          users: {users}
    - label: transfer
      description: userTransfer(string,string,uint256) between the users added above
      txNumber: {transfers}
      rateControl:
        type: fixed-rate
        opts:
          tps: {tps}
      workload:
        module: benchmarks/dagtransfer.js
        arguments:
          txType: userTransfer
          users: {users}
"""

_WORKLOAD = """\
'use strict';

// DagTransfer workload for Caliper's FISCO BCOS connector (written by ledgerlab init --fisco).
// txType userAdd: one new user per transaction (balance 1000000000); userTransfer: 1 unit
// between two of those users. Users are named per worker and run, so rounds can repeat.

const { WorkloadModuleBase } = require('@hyperledger/caliper-core');

const SIGNATURES = {
    userAdd: 'userAdd(string,uint256)',
    userTransfer: 'userTransfer(string,string,uint256)',
    userBalance: 'userBalance(string)',
};

class DagTransferWorkload extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments,
        sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex,
            roundArguments, sutAdapter, sutContext);
        this.txType = roundArguments.txType || 'userAdd';
        if (!SIGNATURES[this.txType]) {
            const known = Object.keys(SIGNATURES).join(', ');
            throw new Error(`unknown txType ${this.txType}: use ${known}`);
        }
        this.users = Number(roundArguments.users || 100);
        this.prefix = `w${workerIndex}`;
        this.sent = 0;
    }

    user(i) {
        return `${this.prefix}_user${i % this.users}`;
    }

    async submitTransaction() {
        const i = this.sent++;
        let args;
        if (this.txType === 'userAdd') {
            args = { transaction_type: SIGNATURES.userAdd, user: this.user(i),
                balance: '1000000000' };
        } else if (this.txType === 'userTransfer') {
            const to = (i * 7 + 1) % this.users;
            args = { transaction_type: SIGNATURES.userTransfer, from: this.user(i),
                to: this.user(to), amount: '1' };
        } else {
            args = { transaction_type: SIGNATURES.userBalance, user: this.user(i) };
        }
        return this.sutAdapter.sendRequests({
            contractId: 'dagtransfer',
            args: args,
            readOnly: this.txType === 'userBalance',
        });
    }
}

function createWorkloadModule() {
    return new DagTransferWorkload();
}

module.exports.createWorkloadModule = createWorkloadModule;
"""


def _abi_entry(
    name: str, inputs: list[tuple[str, str]], outputs: list[str], view: bool
) -> dict[str, object]:
    return {
        "constant": view,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "name": name,
        "outputs": [{"name": "", "type": t} for t in outputs],
        "payable": False,
        "stateMutability": "view" if view else "nonpayable",
        "type": "function",
    }


DAGTRANSFER_ABI = [
    _abi_entry("userAdd", [("user_name", "string"), ("balance", "uint256")], ["int256"], False),
    _abi_entry("userSave", [("user_name", "string"), ("balance", "uint256")], ["int256"], False),
    _abi_entry("userDraw", [("user_name", "string"), ("balance", "uint256")], ["int256"], False),
    _abi_entry("userBalance", [("user_name", "string")], ["int256", "uint256"], True),
    _abi_entry(
        "userTransfer",
        [("user_a", "string"), ("user_b", "string"), ("amount", "uint256")],
        ["int256"],
        False,
    ),
]
"""DagTransfer's ABI as FISCO's SDK consoles read it (methods and outputs per FISCO 2.x)."""


def python_sdk_config(chain: Chain) -> str:
    sdk = chain.root / SDK_DIR
    first = chain.sealers[0]
    assert first.channel is not None
    host, port = _host_port(first.channel)
    return f"""\
# FISCO python-sdk settings for this ledgerlab chain (written by `ledgerlab init --fisco`).
# Copy these lines over the same names in python-sdk's client_config.py (class client_config).
crypto_type = "ECDSA"
fiscoChainId = {chain.chain_id if chain.chain_id.isdigit() else repr(chain.chain_id)}
groupid = {_group_number(chain)!r}
client_protocol = "channel"  # or "rpc" with remote_rpcurl below
remote_rpcurl = "{first.rpc_url}"
channel_host = "{host}"
channel_port = {port}
channel_ca = "{sdk / "ca.crt"}"
channel_node_cert = "{sdk / "sdk.crt"}"
channel_node_key = "{sdk / "sdk.key"}"
"""


def java_sdk_config(chain: Chain) -> str:
    peers = ", ".join(f'"{n.channel}"' for n in chain.sealers)
    return f"""\
# FISCO java-sdk 2.x settings for this ledgerlab chain (written by `ledgerlab init --fisco`).
# Put it at conf/config.toml of the java-sdk(-demo) distribution.
[cryptoMaterial]
certPath = "{chain.root / SDK_DIR}"   # ca.crt, sdk.crt, sdk.key

[network]
peers = [{peers}]   # the nodes' channel ports

[account]
keyStoreDir = "account"
accountFileFormat = "pem"

[threadPool]
maxBlockingQueueSize = "102400"
"""


def write_client_files(
    chain: Chain, admin: KeyPair, *, users: int = 1000, transfers: int = 2000, tps: int = 200
) -> Path:
    """Write ``<dir>/fisco/``: Caliper, python-sdk and java-sdk configurations."""
    out = chain.root / FISCO_DIR
    caliper = out / "caliper"
    (caliper / "networks").mkdir(parents=True, exist_ok=True)
    (caliper / "benchmarks").mkdir(parents=True, exist_ok=True)
    (caliper / "networks" / "fisco-bcos.json").write_text(
        json.dumps(caliper_network(chain, admin), indent=2) + "\n", encoding="utf-8"
    )
    (caliper / "benchmarks" / "config.yaml").write_text(
        _BENCHMARK.format(users=users, transfers=transfers, tps=tps), encoding="utf-8"
    )
    (caliper / "benchmarks" / "dagtransfer.js").write_text(_WORKLOAD, encoding="utf-8")
    (out / "python-sdk").mkdir(parents=True, exist_ok=True)
    (out / "python-sdk" / "client_config.py").write_text(python_sdk_config(chain), "utf-8")
    (out / "abi").mkdir(parents=True, exist_ok=True)
    (out / "abi" / "DagTransfer.abi").write_text(json.dumps(DAGTRANSFER_ABI), encoding="utf-8")
    (out / "java-sdk").mkdir(parents=True, exist_ok=True)
    (out / "java-sdk" / "config.toml").write_text(java_sdk_config(chain), encoding="utf-8")
    (caliper / "networks" / "fisco-bcos.json").chmod(0o600)  # it holds the admin key
    return out


__all__ = [
    "DAGTRANSFER",
    "caliper_network",
    "channel_cert",
    "fisco_address",
    "java_sdk_config",
    "python_sdk_config",
    "write_client_files",
    "write_sdk_certs",
]
