"""Ray address handling and worker clamping."""

from __future__ import annotations

import time

import pytest

from cortico.ray_runtime import clamp_workers, ray_session, resolve_address


def test_address_comes_from_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) is None
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert resolve_address(None) == "10.0.0.5:6379"
    assert resolve_address("auto") == "auto"
    with pytest.raises(ValueError, match="empty"):
        resolve_address("  ")


def test_workers_are_clamped_to_the_cpus_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert clamp_workers(2, 1.0, 2.0) == 2
    assert clamp_workers(4, 0.5, 2.0) == 4
    with caplog.at_level("WARNING"):
        assert clamp_workers(8, 1.0, 2.0) == 2
    assert "do not fit" in caplog.text
    with pytest.raises(ValueError, match="at least 1"):
        clamp_workers(0, 1.0, 2.0)
    with pytest.raises(ValueError, match="needs 4"):
        clamp_workers(1, 4.0, 2.0)


@pytest.mark.slow
def test_an_unreachable_cluster_fails_fast_with_advice() -> None:
    started = time.perf_counter()
    with pytest.raises(ConnectionError, match="ray start --head"):
        with ray_session("127.0.0.1:1"):
            pass
    assert time.perf_counter() - started < 60


def test_an_initialised_ray_is_reused_but_an_unreachable_address_is_still_refused(local_ray: None) -> None:
    import ray

    with ray_session() as session:
        assert not session.started_here and session.cpus == 2
    assert ray.is_initialized(), "a Ray this session did not start is left running"
    with pytest.raises(ConnectionError, match="ray start --head"):
        with ray_session("127.0.0.1:1"):
            pass
