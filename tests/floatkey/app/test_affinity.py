import os
import subprocess
import sys
import textwrap

import pytest

from floatkey.app import affinity
from floatkey.errors import ConfigError
from tests.support.server import wait_until


def test_auto_takes_the_highest_allowed_cpu():
    assert affinity.choose("auto", {0, 1, 2, 3}) == 3
    assert affinity.choose("auto", {2, 5}) == 5
    assert affinity.choose("auto", {0}) == 0


def test_auto_avoids_cpus_other_processes_are_pinned_to():
    assert affinity.choose("auto", {0, 1, 2, 3}, taken={3}) == 2
    assert affinity.choose("auto", {0, 1, 2, 3}, taken={3, 2, 7}) == 1
    assert affinity.choose("auto", {0, 1}, taken={0, 1}) == 1  # all taken: the highest anyway


def test_a_chosen_cpu_is_kept_even_when_taken():
    assert affinity.choose(1, {0, 1}, taken={1}) == 1


def test_pinned_elsewhere_sees_a_pinned_process_and_not_kernel_threads():
    cpu = max(os.sched_getaffinity(0))
    sleeper = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    child = subprocess.Popen(["taskset", "-c", str(cpu), *sleeper], stdin=subprocess.PIPE)
    try:
        wait_until(
            lambda: _allowed_list(child.pid) == str(cpu) and _is_user_process(child.pid),
            what="the child to run pinned",
        )
        assert cpu in affinity.pinned_elsewhere()
    finally:
        child.communicate(b"")
    # Every CPU has kernel threads pinned to it alone (ksoftirqd/N, ...): they must not count.
    # Told apart here by the kernel's own flag, not by the empty command line the code uses.
    kernel_only = _pinned_alone(kernel=True) - _pinned_alone(kernel=False)
    assert kernel_only, "no CPU here has only kernel threads pinned to it: nothing to check"
    assert not kernel_only & affinity.pinned_elsewhere()


def test_a_process_named_in_any_encoding_is_read_too():
    """The Name: line of /proc/PID/status is whatever bytes the process chose."""
    cpu = max(os.sched_getaffinity(0))
    renamed = [
        sys.executable,
        "-c",
        textwrap.dedent("""
        import sys
        with open("/proc/self/comm", "wb") as comm:
            comm.write("z\\u00e4hlt\\xff".encode("latin-1"))
        sys.stdout.write("named\\n")
        sys.stdout.flush()
        sys.stdin.read()
    """),
    ]
    child = subprocess.Popen(
        ["taskset", "-c", str(cpu), *renamed], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"named\n"
        with open(f"/proc/{child.pid}/status", "rb") as status:
            assert not status.read().isascii()
        assert cpu in affinity.pinned_elsewhere()
    finally:
        child.communicate(b"")


PF_KTHREAD = 0x00200000


def _allowed_list(pid: int) -> str:
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as status:
        return next(line.split(":", 1)[1].strip() for line in status if line.startswith("Cpus_allowed_list:"))


def _is_user_process(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
        flags = int(stat.read().rsplit(")", 1)[1].split()[6])
    return not flags & PF_KTHREAD


def _pinned_alone(kernel: bool) -> set[int]:
    """CPUs that a kernel thread (or a user process) is pinned to alone."""
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if _is_user_process(int(name)) != kernel and _allowed_list(int(name)).isdigit():
                found.add(int(_allowed_list(int(name))))
        except (OSError, StopIteration):
            continue
    return found


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


@pytest.mark.parametrize(
    ("cpus", "shown"),
    [
        ({0}, "0"),
        ({0, 1}, "0-1"),
        ({0, 1, 2, 5}, "0-2,5"),
        ({3, 5, 7}, "3,5,7"),
        ({4, 5, 9, 10, 11}, "4-5,9-11"),
    ],
)
def test_cpu_sets_are_shown_as_in_proc_status(cpus, shown):
    assert affinity.format_cpus(cpus) == shown


PIN_IN_A_CHILD = textwrap.dedent("""
    import os, threading
    from floatkey.app import affinity
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
    cpu = max(os.sched_getaffinity(0))
    out = subprocess.run(
        [sys.executable, "-c", PIN_IN_A_CHILD.replace("SETTING", str(cpu))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[-1] == f"cpu {cpu}"
    assert out[:-1] == [str([cpu])] * 3  # main thread, the one before, the one after


def test_pin_auto_takes_the_cpu_choose_names():
    expected = affinity.choose("auto", os.sched_getaffinity(0), affinity.pinned_elsewhere())
    out = subprocess.run(
        [sys.executable, "-c", PIN_IN_A_CHILD.replace("SETTING", "'auto'")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[-1] == f"cpu {expected}"


def test_pin_all_changes_nothing():
    allowed = sorted(os.sched_getaffinity(0))
    out = subprocess.run(
        [sys.executable, "-c", PIN_IN_A_CHILD.replace("SETTING", "'all'")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [str(allowed)] * 3 + ["cpu None"]
