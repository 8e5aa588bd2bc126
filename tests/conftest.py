from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.procs import ADMIN_KEY, env_for, running


@pytest.fixture(scope="session")
def sim_day(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A short simulated day (adserver simulate): its report, with "root" (the plot and
    report files) and "data" (its data directory: store, event logs)."""
    from adserver.tools.simulate import Settings, simulate

    root = tmp_path_factory.mktemp("sim")
    settings = Settings(
        flights=14,
        requests=4000,
        workers=2,
        interval=600.0,
        seed=3,
        plot=str(root / "pacing.png"),
        report=str(root / "report.json"),
        progress=False,
    )
    result = simulate(str(root / "data"), settings)
    result["root"], result["data"] = root, root / "data"
    return result


@pytest.fixture(scope="session")
def ctr_day(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A simulated day with enough clicks to train and judge a CTR model on (~90 held out of
    ~450; `sim_day`'s 20-50 held-out clicks made calibration checks flaky), ~20 s."""
    from adserver.tools.simulate import Settings, simulate

    root = tmp_path_factory.mktemp("ctr-sim")
    settings = Settings(
        flights=14,
        requests=12000,
        workers=2,
        interval=600.0,
        seed=5,
        plot=None,
        report=None,
        progress=False,
    )
    result = simulate(str(root / "data"), settings)
    result["data"] = root / "data"
    return result


@pytest.fixture(scope="session")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real control process on an ephemeral port, over an empty store."""
    data = tmp_path_factory.mktemp("control")
    with running(["control", "--api-port", "0"], env_for(str(data))) as proc:
        yield proc.url


@pytest.fixture(scope="session")
def admin(control: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=control, headers={"X-Api-Key": ADMIN_KEY}, timeout=30) as c:
        yield c


@pytest.fixture
def anon(control: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=control, timeout=30) as c:
        yield c
