"""``ledgerlab chaos``: perturb a real multi-process cluster and check that nothing is lost.

Modules, each with one job:

| module | job |
|---|---|
| ``schedule`` | the perturbations of a run: from a seed or a TOML file, back to TOML |
| ``proxy`` | the fault-injecting TCP proxy: a link's cut, delay, jitter, loss, rate, resets |
| ``network`` | one proxied link per node pair (TCP) or per node-to-broker path (MQTT) |
| ``fleet`` | node processes: start, SIGKILL, SIGSTOP/SIGCONT, restart, by pid |
| ``broker`` | a private Mosquitto for MQTT runs, restartable |
| ``cluster`` | a chain directory wired through the proxies, and the quorum model |
| ``monitor`` | what the nodes say during the run: heads, views, leaders, timeouts |
| ``workload`` | DagTransfer transactions with every submission, acknowledgement, receipt |
| ``perturb`` | applying and undoing each kind of perturbation |
| ``stalls`` | stretches without progress while a quorum could talk, and their bounds |
| ``store`` | a node's ledger opened read-only |
| ``checker`` | the checks that set the exit status |
| ``report`` | the JSON report and the terminal summary |
| ``runner`` | one run, start to verdict |
| ``soak`` | many seeded runs (``--seeds``) through ``consensus.sim.parallel.run_seeds`` |

docs/reliability.md says what is promised and how each promise is tested.
"""
