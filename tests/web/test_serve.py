"""``floatkey serve`` as a process: where its threads run, what it does once it listens."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from floatkey.app.affinity import choose, format_cpus, pinned_elsewhere
from tests.support.server import ServerProcess


def thread_cpus(pid: int) -> set[str]:
    """The ``Cpus_allowed_list`` of every thread of ``pid``."""
    lists = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        lists.add(
            next(
                line.split(":", 1)[1].strip()
                for line in status.splitlines()
                if line.startswith("Cpus_allowed_list:")
            )
        )
    return lists


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "floatkey.yaml"
    path.write_text("hardwareKey:\n  enabled: false\n" + text)
    return path


@pytest.fixture
def served(tmp_path):
    servers: list[ServerProcess] = []

    def start(text: str) -> ServerProcess:
        server = ServerProcess(tmp_path / "data", "--config", str(config(tmp_path, text))).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_by_default_every_thread_runs_on_one_cpu(served):
    cpu = choose("auto", os.sched_getaffinity(0), pinned_elsewhere())  # the highest one if free
    server = served("")
    assert server.post("/api/v4/licenses", {"product": "p", "floating_users": 2}).status_code == 201
    assert server.post("/api/v4/register", {"product": "p", "user": "u"}).status_code == 200
    assert thread_cpus(server.proc.pid) == {str(cpu)}  # HTTP workers, actors, writer, sweeper
    assert f"pinned to CPU {cpu} (cpuAffinity: auto" in server.log


def test_a_second_server_on_the_machine_takes_another_cpu(tmp_path):
    allowed = os.sched_getaffinity(0)
    first = ServerProcess(tmp_path / "one", "--config", str(config(tmp_path, ""))).start()
    try:
        (one,) = thread_cpus(first.proc.pid)
        free = allowed - pinned_elsewhere()  # the first server's CPU is taken now
        assert int(one) not in free
        second = ServerProcess(tmp_path / "two", "--config", str(config(tmp_path, ""))).start()
        try:
            (two,) = thread_cpus(second.proc.pid)
            if free:
                assert int(two) == max(free)
                assert "other processes pinned to" in second.log
            else:
                assert two == str(max(allowed))  # nothing free: the highest, shared
        finally:
            second.stop()
    finally:
        first.stop()


def test_all_leaves_every_thread_free_to_run_anywhere(served):
    server = served("cpuAffinity: all\n")
    assert server.post("/api/v4/licenses", {"product": "p", "floating_users": 2}).status_code == 201
    assert thread_cpus(server.proc.pid) == {format_cpus(os.sched_getaffinity(0))}
    assert "pinned" not in server.log


def test_a_chosen_cpu(served):
    cpu = min(os.sched_getaffinity(0))
    server = served(f"cpuAffinity: {cpu}\n")
    assert thread_cpus(server.proc.pid) == {str(cpu)}


def test_a_cpu_the_process_may_not_use_stops_the_start_with_a_clear_error(tmp_path):
    missing = max(os.sched_getaffinity(0)) + 1
    path = config(tmp_path, f"cpuAffinity: {missing}\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "floatkey",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--config",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"cpuAffinity: CPU {missing} is not one this process may run on" in done.stderr
    assert "Traceback" not in done.stderr


def test_start_up_objects_are_frozen_out_of_garbage_collection(served):
    server = served("logLevel: DEBUG\n")
    server.wait_for_log("frozen out of garbage collection")
    line = next(line for line in server.lines if "frozen out of garbage collection" in line)
    assert int(line.split(": ", 1)[1].split()[0]) > 10_000  # modules, classes, CherryPy's tree...
