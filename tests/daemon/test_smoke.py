from esm_api.client import Client
from esm_api.protocol import RawImage


def test_fixture_daemon_answers(daemon_endpoint):
    with Client(daemon_endpoint) as client:
        assert client.ping()["type"] == "pong"
        [image] = client.run("texture", {"width": 32, "height": 32, "phases": 1, "iterations": 2},
                             {"exemplar": RawImage(32, 32, 1, bytes(range(256)) * 4)})
    assert (image.width, image.height, image.channels) == (32, 32, 1)
