"""Transports to a robot's ROS graph: native ROS 1 (rospy) and rosbridge (roslibpy), one interface.

Messages cross the interface as rosbridge-style dictionaries (see :mod:`cortico.deploy.messages`), so
everything above the transport is the same for both.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from cortico.deploy.messages import dict_to_message, message_to_dict
from cortico.registry import Registry

logger = logging.getLogger(__name__)

ROS_PACKAGES = (
    "ros-core python3-rospy python3-sensor-msgs python3-geometry-msgs python3-trajectory-msgs python3-std-msgs"
)
SYSTEM_ROS_PATHS = ("/usr/lib/python3/dist-packages",)


class RosUnavailableError(ImportError):
    """ROS 1's Python packages cannot be imported; the message names the packages to install."""


class Transport(Protocol):
    """What the deploy side needs from a ROS connection."""

    def subscribe(self, topic: str, message_type: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback(message_dict)`` for every message on ``topic``."""
        ...

    def advertise(self, topic: str, message_type: str) -> None:
        """Announce a topic ahead of its first message (ROS drops messages sent before a connection exists)."""
        ...

    def wait_for_subscribers(self, topic: str, timeout: float) -> bool:
        """Wait until something listens on an advertised topic; False after ``timeout`` seconds."""
        ...

    def publish(self, topic: str, message_type: str, message: dict[str, Any]) -> None:
        """Publish a message dictionary (the topic is advertised on first use)."""
        ...

    def now(self) -> float:
        """The graph's current time in seconds (ROS time when available)."""
        ...

    def close(self) -> None:
        """Disconnect."""
        ...


def import_rospy() -> Any:
    """Import rospy, from the venv or from the system's ROS 1 packages (Debian installs them system-wide)."""
    try:
        return importlib.import_module("rospy")
    except ImportError:
        for path in SYSTEM_ROS_PATHS:
            if path not in sys.path:
                sys.path.append(path)
        try:
            return importlib.import_module("rospy")
        except ImportError as error:
            raise RosUnavailableError(
                f"ROS 1 is not installed (rospy cannot be imported: {error}); on Debian/Ubuntu install: "
                f"sudo apt-get install {ROS_PACKAGES} (scripts/setup.sh does it)"
            ) from error


def _message_class(message_type: str) -> type:
    package, name = message_type.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError) as error:
        raise RosUnavailableError(f"ROS message type {message_type} is not available: {error}") from error


class Ros1Transport:
    """Native ROS 1 through rospy.

    rospy allows one node per process; a second transport in the same process reuses that node.

    Args:
        node_name: the node's name (made unique).
        queue_size: publisher/subscriber queue length (1: always the newest message).
    """

    def __init__(self, node_name: str = "cortico", queue_size: int = 1) -> None:
        self.rospy = import_rospy()
        if not self.rospy.core.is_initialized():
            self.rospy.init_node(node_name, anonymous=True, disable_signals=True)
        self._queue_size = queue_size
        self._publishers: dict[str, Any] = {}
        self._subscribers: list[Any] = []

    def subscribe(self, topic: str, message_type: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Subscribe; messages reach ``callback`` as dictionaries (binary fields as raw bytes)."""
        subscriber = self.rospy.Subscriber(
            topic, _message_class(message_type), lambda m: callback(message_to_dict(m, binary_as_base64=False)),
            queue_size=self._queue_size, buff_size=2**24, tcp_nodelay=True,
        )  # fmt: skip
        self._subscribers.append(subscriber)

    def advertise(self, topic: str, message_type: str) -> None:
        """Create the publisher of ``topic`` now."""
        if topic not in self._publishers:
            self._publishers[topic] = self.rospy.Publisher(
                topic, _message_class(message_type), queue_size=self._queue_size, tcp_nodelay=True
            )

    def publish(self, topic: str, message_type: str, message: dict[str, Any]) -> None:
        """Publish a dictionary as a rospy message."""
        self.advertise(topic, message_type)
        self._publishers[topic].publish(dict_to_message(_message_class(message_type), message))

    def wait_for_subscribers(self, topic: str, timeout: float = 5.0) -> bool:
        """Wait until someone listens on ``topic`` (a freshly advertised topic drops early messages)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            publisher = self._publishers.get(topic)
            if publisher is not None and publisher.get_num_connections() > 0:
                return True
            time.sleep(0.02)
        return False

    def now(self) -> float:
        """ROS time in seconds."""
        return self.rospy.get_time()

    def close(self) -> None:
        """Unregister every publisher and subscriber (the node stays, as rospy requires)."""
        for item in [*self._subscribers, *self._publishers.values()]:
            item.unregister()
        self._subscribers, self._publishers = [], {}


class RosbridgeTransport:
    """rosbridge v2 over a websocket (roslibpy), for ROS 2 robots or remote ROS 1 masters.

    Args:
        host, port: where ``rosbridge_server`` listens (default port 9090).
        timeout: seconds to wait for the connection.
    """

    def __init__(self, host: str = "localhost", port: int = 9090, timeout: float = 10.0) -> None:
        try:
            import roslibpy
        except ImportError as error:
            raise RosUnavailableError(
                "the rosbridge transport needs roslibpy: .venv/bin/pip install roslibpy"
            ) from error
        self._roslibpy = roslibpy
        self.ros = roslibpy.Ros(host=host, port=port)
        try:
            self.ros.run(timeout=timeout)
        except TimeoutError as error:
            raise ConnectionError(f"no rosbridge server answers at ws://{host}:{port} within {timeout} s") from error
        if not self.ros.is_connected:
            raise ConnectionError(f"no rosbridge server answers at ws://{host}:{port}")
        self._topics: dict[str, Any] = {}

    def _topic(self, topic: str, message_type: str) -> Any:
        if topic not in self._topics:
            self._topics[topic] = self._roslibpy.Topic(self.ros, topic, message_type, queue_length=1)
        return self._topics[topic]

    def advertise(self, topic: str, message_type: str) -> None:
        """Announce ``topic`` to the rosbridge server."""
        self._topic(topic, message_type).advertise()

    def wait_for_subscribers(self, topic: str, timeout: float = 5.0) -> bool:
        """Rosbridge relays to subscribers server-side; nothing to wait for."""
        return True

    def subscribe(self, topic: str, message_type: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Subscribe; rosbridge already delivers dictionaries."""
        self._topic(topic, message_type).subscribe(callback)

    def publish(self, topic: str, message_type: str, message: dict[str, Any]) -> None:
        """Publish a dictionary."""
        self._topic(topic, message_type).publish(self._roslibpy.Message(message))

    def now(self) -> float:
        """Wall-clock seconds (rosbridge does not stream the graph's clock)."""
        return time.time()

    def close(self) -> None:
        """Unsubscribe and disconnect."""
        for topic in self._topics.values():
            if topic.is_advertised:
                topic.unadvertise()
            if topic.is_subscribed:
                topic.unsubscribe()
        self.ros.terminate()


TRANSPORTS: Registry[type] = Registry("ROS transport")
TRANSPORTS.register("ros1", Ros1Transport)
TRANSPORTS.register("rosbridge", RosbridgeTransport)
