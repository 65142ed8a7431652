"""Models behind a real MLServer (Open Inference Protocol v2): the runtime contract, validation
through the CLI, and the network's hostile cases (unreachable, 404, wrong tensor shape, HTTP 500,
timeouts, another model version answering) as exit 2 or a per-item reason, never a dropped item."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.core.errors import InputError
from assay.core.ports import ModelBatch
from assay.core.spec import parse_model_spec
from assay.runtimes import is_endpoint, load_model
from tests.mlserver import Faults, faulty_proxy, fit_served_model, free_port, running_mlserver

N = 600


def assay(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """MLServer serving a scikit-learn pipeline fitted on a table that Assay also registers."""
    tmp = tmp_path_factory.mktemp("mlserver")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, 2)).astype(np.float32)
    y = np.where(x[:, 0] + 0.4 * rng.normal(size=N) > 0, "defect", "ok")
    classes, proba = fit_served_model(tmp / "models", "press", x, y)
    (tmp / "press.csv").write_text(
        "a,b,label\n"
        + "".join(f"{p!r},{q!r},{v}\n" for (p, q), v in zip(x.tolist(), y, strict=True))
    )
    with running_mlserver(tmp / "models") as url:
        yield {"url": url, "x": x, "proba": proba, "classes": classes, "tmp": tmp}


def spec_file(
    folder: Path,
    name: str = "spec.yaml",
    columns: tuple[str, ...] = ("a", "b"),
    output: str = "predict_proba",
    **endpoint: Any,
) -> Path:
    import yaml

    data: dict[str, Any] = {
        "labels": ["defect", "ok"],
        "negative": "ok",
        "input": {"kind": "tabular", "columns": list(columns)},
        "output": {"name": output},
        "endpoint": {"max_batch": 64, "concurrency": 4, "backoff_s": 0.01, **endpoint},
    }
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def registered(served: dict[str, Any], tmp: Path, url: str | None = None, **endpoint: Any) -> Any:
    """The endpoint as ``model add`` stores it: its description, then the runtime."""
    from assay.runtimes.endpoint import describe

    spec = parse_model_spec(__import__("yaml").safe_load(spec_file(tmp, **endpoint).read_text()))
    description = describe(url or f"{served['url']}/v2/models/press", spec)
    path = tmp / "endpoint.json"
    path.write_text(json.dumps(description))
    return load_model(path, spec, "endpoint"), spec


def test_scores_equal_the_servers_own_model_in_batches_of_any_size(
    served: dict[str, Any], tmp_path: Path
) -> None:
    runtime, _ = registered(served, tmp_path)
    assert served["classes"] == ["defect", "ok"]
    x = served["x"]
    for size in (1, 7, N):  # one request, and ten requests in flight four at a time
        out = runtime.predict(ModelBatch.of(x[:size]))
        assert out.errors == {}
        np.testing.assert_allclose(out.outputs, served["proba"][:size], atol=1e-6)
    assert runtime.signature.extra["served_version"] == "v1"
    runtime.close()
    assert is_endpoint(f"{served['url']}/v2/models/press")
    assert not is_endpoint("model.onnx")


def test_validation_through_the_cli_on_the_served_model(
    served: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    url = f"{served['url']}/v2/models/press"
    assert assay(capsys, home, "dataset", "add", "press", str(served["tmp"] / "press.csv"))[0] == 0
    code, out, err = assay(
        capsys, home, "model", "add", "served", url, "--spec", str(spec_file(tmp_path))
    )
    assert code == 0 and "endpoint" in out, err
    code, _, err = assay(
        capsys, home, "validate", "--model", "served", "--dataset", "press",
        "--out", str(tmp_path / "out"), "--no-explore", "--resamples", "100",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["n_failed"] == 0
    scores = pq.read_table(tmp_path / "out" / "predictions.parquet").column("score_defect")
    np.testing.assert_allclose(np.asarray(scores), served["proba"][:, 0], atol=1e-6)
    # The profile is the endpoint's latency as this client sees it.
    assert result["profile"]["summary"]["latency_p50_ms"] > 0


def test_unreachable_unknown_and_misfit_endpoints_are_refused_at_add(
    served: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    spec = str(spec_file(tmp_path))
    cases = {
        f"http://127.0.0.1:{free_port()}/v2/models/press": "cannot reach",
        f"{served['url']}/v2/models/nothing-here": "answered HTTP 404",
    }
    for url, message in cases.items():
        code, _, err = assay(capsys, home, "model", "add", "x", url, "--spec", spec)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    three = spec_file(tmp_path, "three.yaml", columns=("a", "b", "c"))
    code, _, err = assay(
        capsys, home, "model", "add", "x", f"{served['url']}/v2/models/press", "--spec", str(three)
    )
    assert code == 2 and "a test request failed" in err and "HTTP" in err, err
    # The server's default output: class names, not scores.
    labels = spec_file(tmp_path, "labels.yaml", output="predict")
    code, _, err = assay(
        capsys, home, "model", "add", "x", f"{served['url']}/v2/models/press", "--spec", str(labels)
    )
    assert code == 2 and "not numbers" in err, err


def test_failed_requests_are_retried_then_their_items_are_not_judged_with_the_reason(
    served: dict[str, Any], tmp_path: Path
) -> None:
    faults = Faults()
    with faulty_proxy(served["url"], faults) as proxy:
        runtime, _ = registered(served, tmp_path, f"{proxy}/v2/models/press", retries=2)
        x = served["x"][:200]  # requests of 64, 64, 64 and 8 items
        faults.fail_next, faults.requests = 2, 0
        out = runtime.predict(ModelBatch.of(x))
        assert out.errors == {} and faults.requests == 6  # two 500s, retried
        np.testing.assert_allclose(out.outputs, served["proba"][:200], atol=1e-6)

        faults.fail_items = {8}  # the last request always fails
        out = runtime.predict(ModelBatch.of(x))
        assert sorted(out.errors) == list(range(192, 200))
        reason = out.errors[192]
        assert "HTTP 500 (injected failure)" in reason and "after 3 attempt(s)" in reason
        assert np.isnan(out.outputs[192:]).all() and np.isfinite(out.outputs[:192]).all()
        faults.fail_items = set()

        faults.version = "v2"  # someone redeployed behind the URL
        out = runtime.predict(ModelBatch.of(x[:10]))
        assert set(out.errors) == set(range(10))
        assert "model version 'v2', not the registered 'v1'" in out.errors[0]
        faults.version = None
        runtime.close()

    slow = Faults(delay_s=1.0)
    with faulty_proxy(served["url"], slow) as proxy:
        runtime, _ = registered(served, tmp_path, f"{proxy}/v2/models/press", timeout_s=5)
        runtime.settings = type(runtime.settings)(
            timeout_s=0.2, retries=1, backoff_s=0.01, max_batch=64
        )
        runtime.client.timeout = __import__("httpx").Timeout(0.2)
        out = runtime.predict(ModelBatch.of(served["x"][:3]))
        runtime.close()
        assert set(out.errors) == {0, 1, 2} and "Timeout" in out.errors[0]


def test_a_failing_server_fails_every_item_with_the_reason_and_a_gone_one_stops_the_run(
    served: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the CLI. A server that answers HTTP 500 to every inference: every item recorded
    with the reason, the verdict fails (exit 1), nothing dropped or passed. A server that is
    gone when the run starts: exit 2, naming it."""
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "press", str(served["tmp"] / "press.csv"))[0] == 0
    spec = spec_file(tmp_path, retries=1)
    args = ["--dataset", "press", "--no-profile", "--no-explore", "--resamples", "100"]
    faults = Faults()
    with faulty_proxy(served["url"], faults) as proxy:
        url = f"{proxy}/v2/models/press"
        assert assay(capsys, home, "model", "add", "flaky", url, "--spec", str(spec))[0] == 0
        faults.fail_next = 10**9
        code, _, err = assay(
            capsys, home, "validate", "--model", "flaky", "--out", str(tmp_path / "out"), *args
        )
    assert code == 1, err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["n_failed"] == N and result["verdict"]["status"] == "fail"
    assert result["failures"]["by_reason"] == {
        "endpoint answered HTTP 500 (injected failure), after 2 attempt(s)": N
    }
    code, _, err = assay(capsys, home, "validate", "--model", "flaky", *args)
    assert code == 2 and f"cannot reach {url}" in err, err


def test_endpoint_settings_are_checked_in_the_spec(tmp_path: Path) -> None:
    for bad, message in (
        ({"concurrency": 0}, "endpoint.concurrency must be a whole number from 1 to 64"),
        ({"timeout_s": "fast"}, "endpoint.timeout_s must be a number"),
        ({"retry": 2}, "unknown field endpoint.retry"),
    ):
        with pytest.raises(InputError, match=message):
            parse_model_spec(
                {
                    "labels": ["a", "b"],
                    "input": {"kind": "tabular", "columns": ["x"]},
                    "endpoint": bad,
                }
            )


def test_secom_through_a_served_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real table through MLServer, judged through the CLI. Every SECOM entity misses some
    sensor, and v2 JSON tensors cannot carry NaN: every item is recorded with that reason and the
    verdict fails, never a guess. With the gaps filled (column means, a derived table), the
    scores are the served model's own predict_proba within FP32 rounding (the wire format)."""
    import yaml

    from tests.real_datasets import secom

    root, x, y = secom()
    filled = np.where(np.isnan(x), np.nanmean(x, axis=0), x).astype(np.float32)
    filled = np.nan_to_num(filled)  # columns with no value at all
    classes, proba = fit_served_model(tmp_path / "models", "secom", filled, y)
    columns = [f"f{j:03d}" for j in range(x.shape[1])]
    (tmp_path / "filled.csv").write_text(
        ",".join([*columns, "label"]) + "\n"
        + "".join(",".join([*map(repr, row), v]) + "\n" for row, v in zip(filled.tolist(), y, strict=True))
    )  # fmt: skip
    spec = tmp_path / "secom.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "labels": classes,
                "negative": "pass",
                "input": {"kind": "tabular", "columns": columns, "missing": "allow"},
                "output": {"name": "predict_proba"},
                "endpoint": {"max_batch": 128, "concurrency": 2},
            }
        )
    )
    home = tmp_path / "home"
    assert assay(capsys, home, "dataset", "add", "secom", str(root))[0] == 0
    assert assay(capsys, home, "dataset", "add", "filled", str(tmp_path / "filled.csv"))[0] == 0
    args = ["--no-profile", "--no-explore", "--resamples", "100"]
    with running_mlserver(tmp_path / "models") as url:
        code, _, err = assay(
            capsys, home, "model", "add", "served", f"{url}/v2/models/secom", "--spec", str(spec)
        )
        assert code == 0, err
        code, _, err = assay(
            capsys, home, "validate", "--model", "served", "--dataset", "secom", "--out",
            str(tmp_path / "raw"), *args,
        )  # fmt: skip
        assert code == 1, err
        code, _, err = assay(
            capsys, home, "validate", "--model", "served", "--dataset", "filled", "--out",
            str(tmp_path / "out"), *args,
        )  # fmt: skip
    raw = json.loads((tmp_path / "raw" / "result.json").read_text())
    assert raw["failures"]["by_reason"] == {
        "input has missing or infinite values, which v2 JSON tensors cannot carry": len(y)
    }
    assert code in (0, 1), err
    table = pq.read_table(tmp_path / "out" / "predictions.parquet")
    assert table.column("error").null_count == len(y)  # every entity judged
    for k, label in enumerate(classes):
        np.testing.assert_allclose(
            np.asarray(table.column(f"score_{label}")), proba[:, k], atol=1e-6
        )
