"""A real roscore and a simulated arm for the deploy tests, started here and stopped by process id."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROS_AVAILABLE = shutil.which("roscore") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Stop a process group we started, by its id."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def roscore(tmp_path_factory: pytest.TempPathFactory):
    """A real ROS master on a free port; ``ROS_MASTER_URI`` points at it for this process and its children."""
    if not ROS_AVAILABLE:
        pytest.skip("roscore is not installed (scripts/setup.sh installs ros-core)")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    env = dict(os.environ, ROS_MASTER_URI=uri, ROS_HOME=str(tmp_path_factory.mktemp("ros_home")))
    process = subprocess.Popen(
        ["roscore", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.environ["ROS_MASTER_URI"] = uri
    os.environ["ROS_HOME"] = env["ROS_HOME"]
    from cortico.deploy.transport import import_rospy

    import_rospy()
    import rosgraph

    deadline = time.monotonic() + 30
    while not rosgraph.is_master_online(uri):
        if time.monotonic() > deadline or process.poll() is not None:
            _stop(process)
            pytest.fail("roscore did not come up within 30 s")
        time.sleep(0.2)
    yield uri
    _stop(process)


@pytest.fixture(scope="session")
def transport(roscore):
    """This process's ROS node (rospy allows one per process)."""
    from cortico.deploy.transport import Ros1Transport

    return Ros1Transport("cortico_tests")


@pytest.fixture
def sim_arm(roscore):
    """Start ``cortico deploy sim-arm`` for a task in a child process; stopped by process id afterwards."""
    started: list[subprocess.Popen] = []

    def start(task: str, seed: int = 0) -> subprocess.Popen:
        script = Path(sys.executable).parent / "cortico"
        process = subprocess.Popen(
            [str(script), "deploy", "sim-arm", "--task", task, "--seed", str(seed), "--image-size", "48"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        started.append(process)
        line = process.stdout.readline()
        assert "serving" in line, f"sim arm did not start: {line}{process.stdout.read() if process.poll() else ''}"
        return process

    yield start
    for process in started:
        _stop(process)
