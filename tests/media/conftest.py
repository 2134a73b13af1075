import pytest

from media.ice import configure_host_addresses


@pytest.fixture(autouse=True)
def loopback_ice():
    # aioice skips 127.0.0.1 by itself: without this no candidate is gathered here.
    configure_host_addresses(["127.0.0.1"])
    yield
    configure_host_addresses(None)
