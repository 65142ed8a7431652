"""EndpointRuntime: a model behind an inference server that speaks the Open Inference Protocol
(KServe v2: Triton, OpenVINO Model Server, MLServer, KServe).

A batch is cut into requests of ``endpoint.max_batch`` items, sent ``endpoint.concurrency`` at a
time as v2 JSON tensors (``POST {url}/infer``). A request that fails (connection refused or reset,
a timeout, HTTP 429 or 5xx) is retried ``endpoint.retries`` times after ``backoff_s``, doubling;
one that still fails, or whose answer does not fit the spec (a missing output, a wrong shape, a
model version other than the registered one), leaves its items unanswered with the reason: they
are recorded as not judged, never dropped. HTTP 4xx other than 429 is not retried: the request
itself is wrong, and will stay so.

The registered model is the URL, the server's metadata and the model version it answered with
(``served_version``): when the server starts answering with another version, its answers are
not taken for the registered model's.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from assay.core.errors import InputError, describe_exception
from assay.core.ports import ModelBatch, ModelSignature, PartialOutput, TensorInfo
from assay.core.spec import EndpointSpec, ModelSpec
from assay.runtimes.base import expected_input_shape, smoke_test

_DATATYPES: dict[str, Any] = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16}
_DATATYPES |= {"INT64": np.int64, "INT32": np.int32, "UINT8": np.uint8, "BOOL": np.bool_}
RETRIED = {429, 500, 502, 503, 504}


class EndpointError(Exception):
    """One request's failure, as the reason its items are not judged."""


def describe(url: str, spec: ModelSpec) -> dict[str, Any]:
    """What ``assay model add`` stores for an endpoint: its URL, the server's metadata, and the
    model version one test request was answered by. InputError when it cannot be reached."""
    url = url.rstrip("/")
    settings = spec.endpoint or EndpointSpec()
    try:
        with httpx.Client(timeout=settings.timeout_s) as client:
            server = client.get(re.sub(r"/v2/models/.*$", "/v2", url))
            model = client.get(url)
            ready = client.get(f"{url}/ready")
    except httpx.HTTPError as exc:
        raise InputError(f"cannot reach {url}: {describe_exception(exc)}") from None
    if model.status_code != 200:
        raise InputError(f"{url} answered HTTP {model.status_code}: {model.text[:200]}")
    if ready.status_code != 200:
        raise InputError(f"{url} is not ready (HTTP {ready.status_code})")
    try:
        metadata = model.json()
        server_info = server.json() if server.status_code == 200 else {}
    except ValueError:
        raise InputError(f"{url} did not answer with JSON: is it an inference server?") from None
    if not isinstance(metadata, dict) or not isinstance(server_info, dict):
        raise InputError(f"{url} did not answer with v2 metadata: is it an inference server?")
    return {"url": url, "server": server_info, "metadata": metadata}


class EndpointRuntime:
    def __init__(self, description: dict[str, Any], spec: ModelSpec) -> None:
        self.url = str(description["url"])
        self.spec = spec
        self.settings = spec.endpoint or EndpointSpec()
        self.served_version: str | None = description.get("served_version")
        metadata = description.get("metadata") or {}
        declared_inputs = metadata.get("inputs") or []
        self.input_name = spec.input.name or (
            declared_inputs[0]["name"] if declared_inputs else "input-0"
        )
        self.output_name = spec.output.name
        outputs = metadata.get("outputs") or []
        if self.output_name is None and len(outputs) == 1:
            self.output_name = outputs[0]["name"]
        self.client = httpx.Client(
            timeout=self.settings.timeout_s,
            limits=httpx.Limits(max_connections=self.settings.concurrency),
        )
        self.pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="assay-http")
        self.signature = ModelSignature(
            (TensorInfo(self.input_name, (None, *expected_input_shape(spec)), "FP32"),),
            (TensorInfo(self.output_name or "(server's default)", (None, spec.n_classes), "?"),),
            {
                "runtime": "endpoint",
                "url": self.url,
                "server": description.get("server") or {},
                "platform": metadata.get("platform"),
                "served_version": self.served_version,
            },
        )

    def _request(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """The score tensor for ``x``, or EndpointError saying why not."""
        return self._scores(self._post(x), x.shape[0])

    def _post(self, x: npt.NDArray[np.float32]) -> dict[str, Any]:
        """One request, retried; the server's answer, or EndpointError saying why not."""
        body: dict[str, Any] = {
            "inputs": [
                {
                    "name": self.input_name,
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "data": x.reshape(-1).tolist(),
                }
            ]
        }
        if self.output_name is not None:
            body["outputs"] = [{"name": self.output_name}]
        payload = json.dumps(body).encode()
        last = ""
        for attempt in range(self.settings.retries + 1):
            if attempt:
                time.sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.client.post(
                    f"{self.url}/infer",
                    content=payload,
                    headers={"Content-Type": "application/json"},
                )
            except httpx.HTTPError as exc:
                last = f"endpoint unreachable ({describe_exception(exc, 160)})"
                continue
            if response.status_code == 200:
                try:
                    answer: dict[str, Any] = response.json()
                except ValueError:
                    raise EndpointError("endpoint answered something that is not JSON") from None
                return answer
            last = f"endpoint answered HTTP {response.status_code} ({_message(response)})"
            if response.status_code not in RETRIED:
                break
        raise EndpointError(f"{last}, after {attempt + 1} attempt(s)")

    def _scores(self, answer: dict[str, Any], n: int) -> npt.NDArray[np.float64]:
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        if not isinstance(outputs, list):
            raise EndpointError("endpoint answered without outputs")
        version = answer.get("model_version")
        if self.served_version is not None and version != self.served_version:
            raise EndpointError(
                f"endpoint answered with model version {version!r}, not the registered "
                f"{self.served_version!r}"
            )
        if self.output_name is not None:
            found = next((o for o in outputs if o.get("name") == self.output_name), None)
        else:
            found = outputs[0] if len(outputs) == 1 else None
        if found is None:
            names = [o.get("name") for o in outputs]
            raise EndpointError(f"endpoint answered outputs {names}, not {self.output_name!r}")
        dtype = _DATATYPES.get(str(found.get("datatype")))
        if dtype is None:
            raise EndpointError(
                f"output {found.get('name')!r} is {found.get('datatype')}, not numbers: name the "
                "score tensor in the spec's output.name"
            )
        try:
            values = np.asarray(found["data"], dtype=dtype).astype(np.float64)
            shape = [int(d) for d in found["shape"]]
            values = values.reshape(shape)
        except (KeyError, TypeError, ValueError):
            raise EndpointError(
                f"output {found.get('name')!r} has data that does not fit its shape"
            ) from None
        if not shape or shape[0] != n:
            raise EndpointError(f"output {found.get('name')!r} has shape {shape} for {n} items")
        return values

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: queued requests never go
        self.client.close()

    def predict(self, batch: ModelBatch) -> PartialOutput:
        x = np.ascontiguousarray(batch.inputs, np.float32)
        errors: dict[int, str] = {}
        # JSON has no NaN or infinity: such an item cannot be sent, and is not judged (a model
        # that imputes missing values itself needs the binary tensor extension).
        sendable = np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
        for j in np.flatnonzero(~sendable).tolist():
            errors[j] = "input has missing or infinite values, which v2 JSON tensors cannot carry"
        rows = np.flatnonzero(sendable)
        size = self.settings.max_batch
        starts = list(range(0, rows.size, size))
        futures = [self.pool.submit(self._request, x[rows[s : s + size]]) for s in starts]
        answered: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
        for start, future in zip(starts, futures, strict=True):
            at = rows[start : start + size]
            try:
                answered.append((at, future.result()))
            except EndpointError as exc:
                errors.update(dict.fromkeys(at.tolist(), str(exc)))
        # Every answer has the first one's item shape (the task checks that shape).
        shape = answered[0][1].shape[1:] if answered else (self.spec.n_classes,)
        out = np.full((x.shape[0], *shape), np.nan)
        for at, part in answered:
            if part.shape[1:] == shape:
                out[at] = part
            else:
                reason = f"endpoint answered shape {list(part.shape)}, others {list(shape)}"
                errors.update(dict.fromkeys(at.tolist(), reason))
        return PartialOutput(out, errors)


def _ready(runtime: EndpointRuntime) -> None:
    try:
        answer = runtime.client.get(f"{runtime.url}/ready")
    except httpx.HTTPError as exc:
        raise InputError(f"cannot reach {runtime.url}: {describe_exception(exc)}") from None
    if answer.status_code != 200:
        raise InputError(f"{runtime.url} is not ready (HTTP {answer.status_code})")


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    text = str(error if error else response.text).strip().replace("\n", " ")
    return text[:160] or "no message"


def load(
    path: Path,
    spec: ModelSpec,
    threads: int | None = None,
    spin: bool = True,
) -> EndpointRuntime:
    """The runtime entry's loader: the stored description of an endpoint (``describe``), or at
    registration a fresh one; a test request checks the answer against the spec."""
    try:
        description = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name}: not an endpoint description ({exc})") from None
    runtime = EndpointRuntime(description, spec)
    try:
        if "served_version" in description:
            # Validating: checked when registered; a server that is down now stops the run here
            # (exit 2), one that fails later fails its items, each with the reason.
            _ready(runtime)
            return runtime
        smoke = np.zeros((2, *expected_input_shape(spec)), np.float32)
        try:
            version = runtime._post(smoke).get("model_version")
        except EndpointError as exc:
            raise InputError(f"{runtime.url}: a test request failed: {exc}") from None
        runtime.served_version = None if version in (None, "") else str(version)
        runtime.signature.extra["served_version"] = runtime.served_version
        smoke_test(_Strict(runtime), spec, runtime.output_name or "scores")
    except BaseException:
        runtime.close()
        raise
    return runtime


class _Strict:
    """The runtime for the load-time smoke test: an unanswered item is an error there."""

    def __init__(self, runtime: EndpointRuntime) -> None:
        self.runtime = runtime
        self.signature = runtime.signature

    def close(self) -> None:
        self.runtime.close()

    def predict(self, batch: ModelBatch) -> Any:
        out = self.runtime.predict(batch)
        if out.errors:
            raise RuntimeError(next(iter(out.errors.values())))
        return out.outputs
