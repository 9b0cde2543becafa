"""FakeClarifai: an in-process, stateful Clarifai V2 gRPC server for tests and benchmarks.

    with FakeClarifai(pat="test-pat", user_id="test-user") as fake:
        base = fake.base_url            # "http://127.0.0.1:PORT", insecure gRPC
        ...User(user_id="test-user", pat="test-pat", base_url=base)...
        fake.state.inputs("my-app")     # inspect what clients stored
        fake.calls["PostInputs"]        # calls per RPC method

Every knob is a plain attribute and may be changed while the server runs.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import Counter
from concurrent import futures
from typing import Callable, Iterable

import grpc
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from google.protobuf import message_factory

from . import auth
from .http_files import INPUT, LOG, FileServer
from .protos import C, status
from .servicer_apps import AppHandlers
from .servicer_inputs import InputHandlers
from .servicer_models import ModelHandlers
from .servicer_predict import PredictHandlers
from .state import State
from .training import TrainingPlan

InputFails = Callable[[resources_pb2.Input, int], "bool | str"]  # (input, attempt no.) -> fail?

_HANDLER_CLASSES = (AppHandlers, InputHandlers, ModelHandlers, PredictHandlers)
HANDLED = sorted({name for cls in _HANDLER_CLASSES for name in vars(cls) if name[:1].isupper()})
_V2 = service_pb2.DESCRIPTOR.services_by_name["V2"]
_MUTATING_PREFIXES = ("Post", "Patch", "Delete", "Put", "Cancel")
_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 1024 * 1024 * 1024),  # what the SDK's channel allows
    ("grpc.max_send_message_length", 1024 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]


def is_mutating(method: str) -> bool:
    """Writes; PostModelOutputs is a Post but only reads (predict)."""
    return method.startswith(_MUTATING_PREFIXES) and method != "PostModelOutputs"


class _Servicer(*_HANDLER_CLASSES, service_pb2_grpc.V2Servicer):
    def __init__(self, fake: "FakeClarifai") -> None:
        self.fake = fake
        self.state = fake.state


class FakeClarifai:
    """Knobs (all keyword-only, all plain attributes you may change while it runs):

    user_id, pat        the one account; add_user() adds more. Bad auth -> see auth.py.
    fail_rate           share of selected calls answered gRPC UNAVAILABLE before applying.
    fail_after_rate     share answered UNAVAILABLE after applying (the reply is lost).
    throttle_rate       share answered gRPC OK + status 11005 CONN_THROTTLED, not applied.
    fail_methods        which RPCs the three rates hit; None = every mutating one
                        (Post*/Patch*/Delete*/Put*/Cancel*, not PostModelOutputs).
    seed                seeds the one RNG behind the rates.
    latency_s           sleep added to every RPC (in its worker thread).
    failing_input_ids   inputs that always end INPUT_DOWNLOAD_FAILED.
    input_fails         (input, attempt) -> bool|reason: per-posting download failures.
    add_job_polls, add_job_delay_s   an inputs-add job stays pending for that many
                        GetInputsAddJob polls and seconds (both 0: done at once).
    dataset_version_polls  GetDatasetVersion reads that see PENDING before READY.
    dataset_version_fails  a version ends DATASET_VERSION_FAILURE instead of READY.
    training_plan       TrainingPlan for new model versions (stage lengths, forced failure).
    max_workers         gRPC thread pool (concurrent calls in flight, latency included).
    server_concept_order  model versions come back with their concepts sorted and without the
                        metadata they were posted with (a server that keeps its own order).
    refuse_input        input -> reason|None: PostInputs refuses those inputs for good
                        (INPUT_INVALID_ARGUMENT each, as Clarifai does for a bad input) and
                        adds the others: MIXED_STATUS, or FAILURE when none was added.
    silent_calls        {method: n}: the next n calls of that method get no answer at all (a
                        half-open connection): held until the client gives up, never applied.
    files               the loopback HTTP server of hosted files (FileServer: redirect_to,
                        requests); None until started.
    """

    def __init__(
        self,
        *,
        user_id: str = "test-user",
        pat: str = "test-pat",
        fail_rate: float = 0.0,
        fail_after_rate: float = 0.0,
        fail_methods: Iterable[str] | None = None,
        throttle_rate: float = 0.0,
        latency_s: float = 0.0,
        seed: int = 0,
        failing_input_ids: Iterable[str] = (),
        input_fails: InputFails | None = None,
        add_job_polls: int = 0,
        add_job_delay_s: float = 0.0,
        dataset_version_polls: int = 0,
        dataset_version_fails: bool = False,
        training_plan: TrainingPlan | None = None,
        max_workers: int = 32,
        server_concept_order: bool = False,
        refuse_input: Callable[[resources_pb2.Input], "str | None"] | None = None,
        silent_calls: dict[str, int] | None = None,
    ) -> None:
        self.user_id, self.pat = user_id, pat
        # fail_after_rate is what makes a naive retry duplicate things: the write happened.
        self.fail_rate, self.fail_after_rate = fail_rate, fail_after_rate
        self.fail_methods = set(fail_methods) if fail_methods is not None else None
        self.throttle_rate = throttle_rate  # the SDK's own stub retries 11005 in-band
        self.latency_s = latency_s
        self.failing_input_ids = set(failing_input_ids)
        self.input_fails = input_fails
        self.add_job_polls, self.add_job_delay_s = add_job_polls, add_job_delay_s
        self.dataset_version_polls = dataset_version_polls
        self.dataset_version_fails = dataset_version_fails
        self.training_plan = training_plan or TrainingPlan()
        self.max_workers = max_workers
        self.server_concept_order = server_concept_order
        self.refuse_input = refuse_input
        self.silent_calls: Counter[str] = Counter(silent_calls or {})
        self._stopping = threading.Event()
        self.state = State()
        self.state.default_user = user_id
        self.pats = {pat: user_id}
        self.calls: Counter[str] = Counter()  # every call that reached the server
        self.faults: Counter[str] = Counter()  # injected UNAVAILABLE/throttle per method
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._grpc: grpc.Server | None = None
        self._files: FileServer | None = None
        self._channels: list[grpc.Channel] = []
        self.port = 0

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> str:
        self._files = FileServer(self._resolve_file)
        self._files.start()
        server = grpc.server(futures.ThreadPoolExecutor(self.max_workers, "fake-clarifai"), options=_GRPC_OPTIONS)
        servicer = _Servicer(self)
        for name in HANDLED:
            setattr(servicer, name, self._wrap(name, getattr(servicer, name)))
        service_pb2_grpc.add_V2Servicer_to_server(servicer, server)
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc = server
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()  # releases the calls held silent
        while self._channels:
            self._channels.pop().close()
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait()
            self._grpc = None
        if self._files is not None:
            self._files.stop()
            self._files = None

    def __enter__(self) -> "FakeClarifai":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def files(self) -> FileServer | None:
        return self._files

    @property
    def http_base(self) -> str:
        return self._files.base if self._files else ""

    def env(self) -> dict[str, str]:
        """The environment a client process needs to reach this server."""
        return {"CLARIFAI_API_BASE": self.base_url, "CLARIFAI_PAT": self.pat, "CLARIFAI_USER_ID": self.user_id}

    def stub(self, retries: bool = True) -> service_pb2_grpc.V2Stub:
        """A raw V2 stub on a new channel to this server; send metadata=self.metadata().

        retries=True: the SDK's own channel (ClarifaiChannel), whose service config makes
        gRPC itself retry UNAVAILABLE up to 5 attempts. retries=False: a plain channel, so
        every injected fault reaches the caller. Either way ClarifaiChannel is called first:
        V2Stub() needs the response deserializer that it installs module-wide."""
        from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel

        channel = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=self.port)
        if not retries:
            channel.close()
            options = [("grpc.enable_retries", 0)] + _GRPC_OPTIONS[:2]
            channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=options)
        self._channels.append(channel)  # closed by stop()
        return service_pb2_grpc.V2Stub(channel)

    def metadata(self, pat: str | None = None) -> tuple:
        return (("authorization", f"Key {pat or self.pat}"),)

    # ---- knobs and helpers for tests --------------------------------------------------------
    def add_user(self, user_id: str, pat: str) -> None:
        self.pats[pat] = user_id

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.faults.clear()

    def new_training_plan(self) -> TrainingPlan:
        """Each new model version gets a copy: changing the plan later leaves it alone."""
        return dataclasses.replace(self.training_plan)

    def input_failure(self, inp: resources_pb2.Input, attempt: int) -> str | None:
        """Why this posting of `inp` ends INPUT_DOWNLOAD_FAILED, or None."""
        if inp.id in self.failing_input_ids:
            return "download failed (failing_input_ids)"
        verdict = self.input_fails(inp, attempt) if self.input_fails else False
        if verdict:
            return verdict if isinstance(verdict, str) else "download failed (input_fails)"
        return None

    def finish_training(
        self,
        app_id: str,
        model_id: str,
        version_id: str | None = None,
        code: int = C.MODEL_TRAINED,
        user_id: str | None = None,
    ) -> str:
        """Force a version (default: the newest) to its final status now; returns its id."""
        with self.state.lock:
            app = self.state.app(user_id or self.user_id, app_id)
            model = app.models[model_id]
            version = model.versions[version_id] if version_id else model.latest()
            version.forced_code = code
            version.completed = time.time()
            return version.id

    def fail_version(
        self,
        app_id: str,
        model_id: str,
        version_id: str | None = None,
        code: int = C.MODEL_TRAINING_FAILED,
        user_id: str | None = None,
    ) -> str:
        return self.finish_training(app_id, model_id, version_id, code, user_id)

    # ---- plumbing -----------------------------------------------------------------------
    def _resolve_file(self, path: str):
        with self.state.lock:
            if match := LOG.match(path):
                user, app_id, model_id, version_id = match.groups()
                app = self.state.app(user, app_id)
                model = app.models.get(model_id) if app else None
                version = model.versions.get(version_id) if model else None
                if version is not None and version.has_log():
                    return "text/plain; charset=utf-8", version.log_text().encode()
            elif match := INPUT.match(path):
                user, app_id, input_id = match.groups()
                app = self.state.app(user, app_id)
                record = app.inputs.get(input_id) if app else None
                if record is not None:
                    return "application/octet-stream", record.image_bytes
        return None

    def _inject(self, method: str, rate: float) -> bool:
        if rate <= 0:
            return False
        chosen = is_mutating(method) if self.fail_methods is None else method in self.fail_methods
        if not chosen:
            return False
        with self._lock:
            hit = self._rng.random() < rate
            if hit:
                self.faults[method] += 1
        return hit

    def _wrap(self, name: str, handler):
        """Count, delay, inject faults and check auth around one RPC handler."""
        response_cls = message_factory.GetMessageClass(_V2.methods_by_name[name].output_type)

        def call(request, context):
            with self._lock:
                self.calls[name] += 1
                silent = self.silent_calls[name] > 0
                if silent:
                    self.silent_calls[name] -= 1
            if silent:  # a half-open connection: nothing comes back, nothing is applied
                while context.is_active() and not self._stopping.wait(0.02):
                    pass
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake-clarifai: silent call given up")
            if self.latency_s:
                time.sleep(self.latency_s)
            if self._inject(name, self.fail_rate):
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake-clarifai: injected UNAVAILABLE")
            if self._inject(name, self.throttle_rate):
                return response_cls(status=status(C.CONN_THROTTLED, "fake-clarifai: throttled"))
            denied = auth.check(context.invocation_metadata(), request, self.pats)
            if denied is not None:
                return response_cls(status=denied)
            response = handler(request, context)
            if self._inject(name, self.fail_after_rate):
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake-clarifai: injected UNAVAILABLE after applying")
            return response

        return call
