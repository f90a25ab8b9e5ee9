"""Every operation against a real daemon process over loopback ZeroMQ."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from esm_client import protocol as P
from esm_client.client import Client, DaemonError, Finished, JobCancelled, Progress
from esm_client.protocol import RawImage


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)


@pytest.fixture
def client(daemon_endpoint: str) -> Iterator[Client]:
    with Client(daemon_endpoint, timeout_s=30) as c:
        yield c


def running(client: Client) -> int:
    return client.info()["jobs"]["running"]


def test_ping_reports_version_and_pid(client: Client, daemon: Any) -> None:
    pong = client.ping()
    assert pong["type"] == "pong"
    assert pong["protocol"] == P.PROTOCOL_VERSION
    assert pong["pid"] == daemon.process.pid


def test_info_reports_device_limits_modes_and_caches(client: Client) -> None:
    info = client.info()
    assert info["device"] in ("cpu", "cuda", "mps")
    assert "texture" in info["modes"]
    assert info["limits"]["max_pixels"] == P.Limits().max_pixels
    assert set(info["caches"]) == {"networks", "style_features"}
    assert set(info["jobs"]) >= {"running", "queued", "completed", "failed", "cancelled"}


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_texture_job_returns_an_image_of_the_requested_size(client: Client, tiny: dict, make_exemplar: Any,
                                                            channels: int) -> None:
    [image] = client.run("texture", {**tiny, "width": 40}, {"exemplar": make_exemplar(channels)})
    assert (image.width, image.height, image.channels) == (40, 32, channels)
    assert isinstance(image.data, bytes) and len(image.data) == 40 * 32 * channels


def test_daemon_result_equals_in_process_result(client: Client, tiny: dict, exemplar: RawImage) -> None:
    from esm_contract.jobs import parse_job
    from esm_core import Engine

    [image] = client.run("texture", tiny, {"exemplar": exemplar})
    pixels = np.frombuffer(exemplar.data, np.uint8).reshape(32, 32, 1).copy()
    [expected] = Engine("cpu").run(parse_job("texture", tiny, {"exemplar": pixels}))
    assert np.array_equal(np.frombuffer(image.data, np.uint8).reshape(expected.shape), expected)


def test_progress_and_previews_reach_the_callback(client: Client, make_exemplar: Any) -> None:
    seen: list[Progress] = []
    client.run("texture", {"width": 64, "height": 64, "phases": 2, "iterations": 3}, {"exemplar": make_exemplar(1, 64)},
               on_progress=seen.append, preview_every_s=0.05)
    assert seen, "no progress events"
    assert {p.phase for p in seen} == {0, 1} and all(p.phases == 2 and p.steps == 3 for p in seen)
    assert seen[-1].phase == 1 and seen[-1].step == 3 and seen[-1].fraction == 1.0
    previews = [p.preview for p in seen if p.preview is not None]
    assert previews, "a preview was due at the first evaluation"
    assert all(len(p.data) == p.width * p.height * p.channels and p.channels == 1 for p in previews)


def test_poll_never_blocks_and_ends_with_finished(client: Client, tiny: dict, exemplar: RawImage) -> None:
    job = client.submit("texture", tiny, {"exemplar": exemplar})
    assert job.id
    events: list[Any] = []
    deadline = time.monotonic() + 60
    while not job.done and time.monotonic() < deadline:
        events += job.poll()  # timeout_ms=0, as a GUI timer would call it
        time.sleep(0.01)
    assert job.done and job.error is None
    assert isinstance(events[-1], Finished) and events[-1].images == job.result
    assert [(i.width, i.height) for i in job.result] == [(32, 32)]
    assert job.poll() == []


def test_events_iterator_yields_progress_then_finished(client: Client, tiny: dict, exemplar: RawImage) -> None:
    events = list(client.submit("texture", tiny, {"exemplar": exemplar}).events())
    assert all(isinstance(e, Progress) for e in events[:-1]) and len(events) >= 2
    assert isinstance(events[-1], Finished) and events[-1].error is None


@pytest.mark.parametrize("mode, params, names, needle", [
    ("texture", {"phases": 0}, ["exemplar"], "phases"),
    ("texture", {"width": "wide"}, ["exemplar"], "width"),
    ("texture", {"network": 5}, ["exemplar"], ""),
    ("texture", {"no_such_param": 1}, ["exemplar"], "no_such_param"),
    ("sculpt", {}, ["exemplar"], "unknown mode"),
    ("texture", {}, [], "exemplar"),
    ("texture", {}, ["exemplar", "extra"], "extra"),
])
def test_bad_jobs_are_refused_before_acceptance(client: Client, exemplar: RawImage, mode: str, params: dict,
                                                names: list[str], needle: str) -> None:
    with pytest.raises(DaemonError) as caught:
        client.submit(mode, params, {name: exemplar for name in names})
    assert caught.value.code == P.BAD_PARAMS
    assert needle in caught.value.message
    assert client.ping()["type"] == "pong"


def test_engine_error_after_acceptance_is_a_job_error(client: Client, exemplar: RawImage) -> None:
    job = client.submit("texture", {"width": 8, "height": 8, "phases": 1, "iterations": 2}, {"exemplar": exemplar})
    with pytest.raises(DaemonError) as caught:
        job.wait()
    assert caught.value.code == P.BAD_PARAMS and "too small" in caught.value.message
    assert client.ping()["type"] == "pong"


def test_cancel_running_job(client: Client, endless: dict, exemplar: RawImage) -> None:
    before = client.info()["jobs"]["cancelled"]
    job = client.submit("texture", endless, {"exemplar": exemplar})
    first = job.poll(timeout_ms=60_000)
    assert first and isinstance(first[0], Progress), "the job should be running"
    job.cancel()
    with pytest.raises(JobCancelled):
        job.wait()
    info = client.info()
    assert info["jobs"]["cancelled"] == before + 1 and info["jobs"]["running"] == 0


def test_cancel_queued_job_while_another_runs(client: Client, endless: dict, tiny: dict,
                                              exemplar: RawImage) -> None:
    first = client.submit("texture", endless, {"exemplar": exemplar})
    assert first.poll(timeout_ms=60_000), "the first job should be running"
    second = client.submit("texture", tiny, {"exemplar": exemplar})
    assert client.info()["jobs"]["queued"] == 1
    second.cancel()
    with pytest.raises(JobCancelled, match="before it started"):
        second.wait()
    assert not first.done
    first.cancel()
    with pytest.raises(JobCancelled):
        first.wait()


def test_cancel_of_unknown_or_foreign_job_is_an_error(client: Client, daemon_endpoint: str, endless: dict,
                                                      exemplar: RawImage) -> None:
    with pytest.raises(DaemonError) as caught:
        client.request("cancel", job="no-such-job")
    assert caught.value.code == P.UNKNOWN_JOB
    job = client.submit("texture", endless, {"exemplar": exemplar})
    with Client(daemon_endpoint) as other, pytest.raises(DaemonError) as caught:
        other.request("cancel", job=job.id)
    assert caught.value.code == P.UNKNOWN_JOB
    job.cancel()
    with pytest.raises(JobCancelled):
        job.wait()


def test_heartbeat_names_jobs_the_daemon_does_not_know(client: Client) -> None:
    reply = client.request("heartbeat", jobs=["gone-job"])
    assert reply["type"] == "heartbeat" and reply["lost"] == ["gone-job"]


def test_repeated_exemplar_hits_the_style_feature_cache(client: Client, tiny: dict, make_exemplar: Any) -> None:
    image = make_exemplar(3, 48)  # not used by any other test: the first run must miss
    before = client.info()["caches"]["style_features"]
    client.run("texture", tiny, {"exemplar": image})
    middle = client.info()["caches"]["style_features"]
    client.run("texture", {**tiny, "seed": 7}, {"exemplar": image})
    after = client.info()["caches"]["style_features"]
    assert middle["misses"] > before["misses"] and middle["entries"] >= 1 and middle["bytes"] > 0
    assert after["misses"] == middle["misses"] and after["hits"] > middle["hits"]


def test_ping_answers_while_a_job_runs(client: Client, daemon_endpoint: str, endless: dict,
                                       exemplar: RawImage) -> None:
    job = client.submit("texture", endless, {"exemplar": exemplar})
    job.poll(timeout_ms=60_000)
    with Client(daemon_endpoint, timeout_s=10) as other:
        for _ in range(20):
            assert other.ping()["type"] == "pong"
        assert other.info()["jobs"]["running"] == 1
    job.cancel()
    with pytest.raises(JobCancelled):
        job.wait()


def test_many_concurrent_clients_get_their_own_results(daemon_endpoint: str, exemplar: RawImage) -> None:
    widths = [24 + 4 * i for i in range(12)]
    results: dict[int, Any] = {}

    def one(width: int) -> None:
        try:
            with Client(daemon_endpoint, timeout_s=120) as c:
                assert c.ping()["type"] == "pong"
                [image] = c.run("texture", {"width": width, "height": 24, "phases": 1, "iterations": 2},
                                {"exemplar": exemplar})
                results[width] = (image.width, image.height)
        except Exception as error:  # reported by the assertion below
            results[width] = error

    threads = [threading.Thread(target=one, args=(w,)) for w in widths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert results == {w: (w, 24) for w in widths}


def test_one_client_many_jobs_in_flight(client: Client, exemplar: RawImage) -> None:
    jobs = [client.submit("texture", {"width": 24 + 8 * i, "height": 24, "phases": 1, "iterations": 2},
                          {"exemplar": exemplar}) for i in range(4)]
    for i, job in reversed(list(enumerate(jobs))):  # wait in the opposite order: routing by job
        [image] = job.wait()
        assert image.width == 24 + 8 * i


def test_client_that_stops_polling_loses_its_job(client: Client, endless: dict, exemplar: RawImage) -> None:
    timeout = client.info()["limits"]["heartbeat_timeout_s"]
    job = client.submit("texture", endless, {"exemplar": exemplar})
    job.poll(timeout_ms=60_000)
    with Client(client.endpoint) as watcher:
        wait_for(lambda: running(watcher) == 0, timeout_s=timeout + 30, what="cancelling the silent client's job")
    events = job.poll(timeout_ms=10_000)
    assert job.done and isinstance(job.error, JobCancelled), events
