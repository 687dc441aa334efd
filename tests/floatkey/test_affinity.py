import os
import subprocess
import sys
import textwrap

import pytest

from floatkey import affinity
from floatkey.errors import ConfigError


def test_auto_takes_the_highest_allowed_cpu():
    assert affinity.choose("auto", {0, 1, 2, 3}) == 3
    assert affinity.choose("auto", {2, 5}) == 5
    assert affinity.choose("auto", {0}) == 0


def test_all_leaves_the_process_alone():
    assert affinity.choose("all", {0, 1}) is None


def test_a_cpu_number_must_be_allowed():
    assert affinity.choose(1, {0, 1}) == 1
    refused = r"cpuAffinity: CPU 7 is not one this process may run on \(allowed: 0-1\)"
    with pytest.raises(ConfigError, match=refused):
        affinity.choose(7, {0, 1})


@pytest.mark.parametrize("setting", ["fast", True, 1.5])
def test_anything_else_is_refused(setting):
    with pytest.raises(ConfigError, match="cpuAffinity: must be auto, all or a CPU number"):
        affinity.choose(setting, {0, 1})


@pytest.mark.parametrize(("cpus", "shown"), [
    ({0}, "0"), ({0, 1}, "0-1"), ({0, 1, 2, 5}, "0-2,5"), ({3, 5, 7}, "3,5,7"),
    ({4, 5, 9, 10, 11}, "4-5,9-11"),
])
def test_cpu_sets_are_shown_as_in_proc_status(cpus, shown):
    assert affinity.format_cpus(cpus) == shown


PIN_IN_A_CHILD = textwrap.dedent("""
    import os, threading
    from floatkey import affinity
    started = threading.Event(); done = threading.Event()
    def idle():
        started.set(); done.wait()
    before = threading.Thread(target=idle); before.start(); started.wait()
    cpu = affinity.pin(SETTING)
    after = threading.Thread(target=done.wait); after.start()
    for tid in sorted(os.listdir("/proc/self/task")):
        print(sorted(os.sched_getaffinity(int(tid))))
    done.set(); before.join(); after.join()
    print("cpu", cpu)
""")


def test_pin_moves_every_thread_started_before_and_after_it():
    allowed = sorted(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", PIN_IN_A_CHILD.replace("SETTING", "'auto'")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[-1] == f"cpu {allowed[-1]}"
    assert out[:-1] == [str([allowed[-1]])] * 3  # main thread, the one before, the one after


def test_pin_all_changes_nothing():
    allowed = sorted(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", PIN_IN_A_CHILD.replace("SETTING", "'all'")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [str(allowed)] * 3 + ["cpu None"]
