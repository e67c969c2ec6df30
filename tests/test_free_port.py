"""Ports for the processes tests start (emulator/http11.py `free_port`): outside the kernel's
ephemeral range, where an outgoing connection could take one before the process binds it."""

from __future__ import annotations

import socket

import pytest

from emulator import http11
from emulator.http11 import free_port, port_ranges


def test_free_ports_come_from_outside_the_ephemeral_range() -> None:
    low, high = http11._ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert all(1024 <= port < low or high < port <= 65535 for port in ports)
    assert len(set(ports)) == len(ports)  # never handed out twice
    with socket.create_server(("127.0.0.1", ports[-1])):
        pass


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (32768, 60999, [(20768, 32768), (61000, 65536)]),  # Linux's default
        (49152, 65535, [(37152, 49152)]),  # macOS's: nothing above
        (1024, 65535, []),  # no room outside: the kernel's own pick
        (1050, 65000, [(65001, 65536)]),  # 26 ports below: too few to draw from
    ],
)
def test_the_ports_outside_the_range(low: int, high: int, expected: list[tuple[int, int]]):
    assert port_ranges(low, high) == expected


def test_a_host_with_no_room_outside_the_range_still_gets_a_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http11, "_ephemeral_range", lambda: (1024, 65535))
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        pass
