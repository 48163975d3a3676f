"""The soak's seeds give the same results in this process, on a local pool and on Dask.

The Dask tests start a real cluster the way a user would (``python -m dask scheduler`` and
``python -m dask worker`` subprocesses on 127.0.0.1), run 30 seeds through it, and compare
every seed's chain hash and summary hash with a serial run; the soak's own command line is
run against the same cluster. ``consensus`` must not import Dask until asked to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consensus.sim import random_scenario, run_scenario
from consensus.sim.parallel import SeedRunError, run_seeds, worker_notes
from consensus.sim.soak import SeedOutcome, main, soak_seed, source_fingerprint
from consensus.sim.summary import chain_hash

SEEDS = range(30)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def serial() -> list[tuple[int, SeedOutcome]]:
    return list(run_seeds(soak_seed, SEEDS, workers=1))


def test_a_seed_outcome_pins_the_run(serial: list[tuple[int, SeedOutcome]]) -> None:
    assert [seed for seed, _ in serial] == list(SEEDS)
    for seed, outcome in serial[:3]:
        assert outcome.seed == seed and not outcome.failures
        assert outcome.chain_hash == chain_hash(run_scenario(random_scenario(seed)))
    assert soak_seed(4) == serial[4][1]  # again, same process: same hashes
    assert sum(o.membership for _, o in serial) > 0  # the window covers membership changes


def test_a_local_pool_gives_the_serial_results(serial: list[tuple[int, SeedOutcome]]) -> None:
    notes: list[str] = []
    assert list(run_seeds(soak_seed, SEEDS, workers=2, log=notes.append)) == serial
    assert notes == ["2 local processes"]


def explode(seed: int) -> int:
    if seed == 3:
        raise ValueError("boom")
    return seed


def test_an_exception_names_its_seed() -> None:
    with pytest.raises(ValueError, match="boom") as info:
        list(run_seeds(explode, range(6), workers=2))
    assert "while running seed 3" in info.value.__notes__


def test_a_failing_seed_prints_the_commands_that_replay_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--seeds", "2", "--break", "small-quorum", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "seed 0 FAILED: validity" in out
    assert "  replay: ledgerlab sim --random-seed 0 --break small-quorum\n" in out
    soak = "python -m consensus.sim.soak --start 0 --seeds 1 --break small-quorum"
    assert f"  replay: {soak}\n" in out
    assert "2 seeds in " in out and "2 failed" in out
    assert "failing seeds: 0 1" in out


def test_the_package_does_not_import_the_engine() -> None:
    probe = (
        "import sys, consensus, consensus.sim, consensus.sim.soak, consensus.sim.parallel\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=ROOT, timeout=60)


def test_an_unreachable_scheduler_is_one_line() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(SeedRunError, match="cannot reach the Dask scheduler"):
        list(run_seeds(soak_seed, [0], scheduler="tcp://127.0.0.1:9", connect_timeout=1))


def test_workers_set_up_to_run_slowly_are_named() -> None:
    good = {"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "1048576"}
    assert worker_notes({"a": 1, "b": 1}, {"a": good, "b": {}}) == []
    notes = worker_notes(
        {"a": 4, "b": 1}, {"a": good, "b": {"MALLOC_TRIM_THRESHOLD_": "65536"}}
    )
    assert len(notes) == 2
    assert notes[0].startswith("note: 1 worker(s) run several threads")
    assert notes[1].startswith("note: 1 worker(s) run with MALLOC_TRIM_THRESHOLD_")
    assert all("MALLOC_MMAP_THRESHOLD_=1048576 dask worker ADDRESS" in n for n in notes)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` + `dask worker --nworkers 2 --nthreads 1` on 127.0.0.1; its address."""
    pytest.importorskip("distributed")
    home = tmp_path_factory.mktemp("dask")
    file = home / "scheduler.json"
    common = ["--host", "127.0.0.1", "--no-dashboard"]
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: str, **env: str) -> None:
        with (home / log).open("w") as err:  # own session, so teardown can end all of it
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dask", *args, *common],
                    cwd=home,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                    env={**os.environ, "DASK_TEMPORARY_DIRECTORY": str(home), **env},
                )
            )

    try:
        start(["scheduler", "--port", "0", "--scheduler-file", str(file)], "scheduler.log")
        deadline = time.monotonic() + 30
        while True:
            try:
                address = str(json.loads(file.read_text())["address"])
                break
            except (OSError, ValueError, KeyError):  # not written yet, or half written
                assert time.monotonic() < deadline, (home / "scheduler.log").read_text()
                time.sleep(0.1)
        # as docs/reliability.md says to start them (see worker_notes)
        worker = ["worker", address, "--nworkers", "2", "--nthreads", "1"]
        start(worker, "worker.log", MALLOC_MMAP_THRESHOLD_="1048576")
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(started):  # the worker first, then the scheduler
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: ours alone
                    proc.wait(timeout=5)


@pytest.mark.slow
def test_a_dask_cluster_gives_the_serial_results(
    dask_cluster: str, serial: list[tuple[int, SeedOutcome]]
) -> None:
    notes: list[str] = []
    got = list(
        run_seeds(
            soak_seed, SEEDS, scheduler=dask_cluster, check=source_fingerprint, log=notes.append
        )
    )
    assert got == serial
    assert notes == [f"Dask scheduler {dask_cluster}: 2 workers, 2 threads"]


@pytest.mark.slow
def test_a_worker_running_other_code_is_refused(dask_cluster: str) -> None:
    with pytest.raises(SeedRunError, match=r"2 of 2 Dask worker.*run different code"):
        list(run_seeds(soak_seed, [0], scheduler=dask_cluster, check=os.getpid))


def digest_and_totals(out: str) -> list[str]:
    """The lines that must not depend on where the seeds ran (no placement, no timing)."""
    lines = out.splitlines()
    keep = [line for line in lines if line.startswith(("digest ", "  ", "seed "))]
    return [line for line in keep if "slowest seed" not in line]


@pytest.mark.slow
def test_the_soak_command_on_a_dask_cluster_prints_the_serial_totals(
    dask_cluster: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--seeds", "30", "--workers", "1"]) == 0
    here = capsys.readouterr().out
    run = subprocess.run(
        [sys.executable, "-m", "consensus.sim.soak", "--seeds", "30", "--scheduler", dask_cluster],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"(Dask scheduler {dask_cluster}: 2 workers, 2 threads): 0 failed" in run.stdout
    assert digest_and_totals(run.stdout) == digest_and_totals(here)
    assert any(line.startswith("digest ") for line in digest_and_totals(here))
