"""The web viewer and HTTP API: FastAPI on uvicorn, a thin shell over `ecglens.predict` and `ecglens.serve.diagnosis`.

Safety: binds to 127.0.0.1 unless told otherwise (then a token is required), limits upload size, record
length and requests in flight (503 with Retry-After beyond), answers bad input with a 4xx JSON error that
names the problem, never uses uploaded names as paths, never unpickles, and serves every asset itself
(no CDN) under a Content-Security-Policy without inline scripts.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ecglens._version import __version__
from ecglens.bundle.meta import STARTER, starter_manifest
from ecglens.explain.inputs import bundle_background
from ecglens.io import Record
from ecglens.leads import canonical_leads
from ecglens.predict import Predictor, Scored
from ecglens.report.paths import safe_name
from ecglens.serve.batching import MicroBatcher
from ecglens.serve.diagnosis import EXPLANATIONS, REPORT_EXPLANATIONS, Diagnosis, explain_scored, report_pdf
from ecglens.serve.examples import Example, examples_note, make_examples
from ecglens.serve.uploads import RequestError, Upload, read_upload
from ecglens.waves.delineate import available as delineation_available
from ecglens.waves.delineate import measurements_of

logger = logging.getLogger(__name__)

STATIC = files("ecglens.serve") / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class ServeLimits:
    """What the server accepts."""

    max_upload_bytes: int = 20 * 2**20
    max_record_seconds: float = 600.0
    max_in_flight: int = 64
    max_files: int = 4
    max_decoded_values: int = 12 * 600 * 1000
    """Samples a request's record may decode to, in all (12 leads x 10 min at 1 kHz: 58 MB as float64); refused
    from what the files declare, before decoding (413)."""
    body_timeout_s: float = 30.0
    """Time a client has to send its whole request body; a slower one gets 408 and frees its slot."""
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    """Names the Host header (and a browser's Origin) may carry: a page on another site, or a DNS-rebinding name,
    gets 403. ``*`` allows any."""


@dataclass(frozen=True)
class ServeConfig:
    """How to serve a bundle."""

    bundle: str
    device: str = "auto"
    token: str | None = None
    limits: ServeLimits = field(default_factory=ServeLimits)
    background_caches: tuple[str, ...] = ()
    max_batch: int = 32
    max_wait_ms: float = 5.0
    shap_samples: int = 16
    results_kept: int = 64
    examples_root: str | None = None
    """A PTB-XL folder, or the folder ``ecglens data download examples`` fills, whose records are the viewer's
    examples (`ecglens.serve.examples`)."""
    measurements: bool = False
    """Delineate each record and report its heart rate, intervals, QTc and axes (``serve --measurements``)."""


class _Service:
    """The loaded bundle and what serves it: the micro-batcher, one model thread, examples, recent results."""

    def __init__(self, config: ServeConfig):
        self.config = config
        # force: the viewer shows a record that is not interpretable with its probabilities, never a decision
        self.predictor = Predictor(config.bundle, config.device, force=True)
        self.meta = self.predictor.meta
        self.notice = None
        if config.bundle == STARTER:
            manifest = starter_manifest()
            self.notice = f"{manifest.name}, the starter model: {manifest.notice}"
        self.background = bundle_background(self.meta, config.background_caches, bundle=self.predictor.bundle)
        if config.measurements and not delineation_available():
            raise ValueError("--measurements needs neurokit2: pip install 'ecglens[waves]'")
        self.measures = config.measurements
        self.model_thread: ThreadPoolExecutor | None = None
        self.batcher: MicroBatcher | None = None
        self.examples: dict[str, Example] = {e.id: e for e in make_examples(self.meta, config.examples_root)}
        self.examples_note = examples_note(self.meta, config.examples_root)
        """How to fetch examples, where a bundle trained on real ECGs has none (shown by the viewer)."""
        self.results: OrderedDict[str, Scored] = OrderedDict()

    def start(self) -> None:
        """Start serving (on the running event loop): a fresh model thread and batcher for each server run."""
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecglens-model")
        self.batcher = MicroBatcher(
            self.predictor.score, self.model_thread, self.config.max_batch, self.config.max_wait_ms / 1000
        )
        self.batcher.start()

    async def stop(self) -> None:
        """Stop the batcher and the model thread (if started)."""
        if self.batcher is not None:
            await self.batcher.stop()
        if self.model_thread is not None:
            self.model_thread.shutdown(wait=False, cancel_futures=True)

    async def diagnose(
        self, record: Record, methods: tuple[str, ...], class_name: str | None, include_input: bool = False
    ) -> JSONResponse:
        item, quality = await run_in_threadpool(self.predictor.prepare, record)
        if self.batcher is None:
            raise RuntimeError("the service is not started")
        probabilities = await self.batcher.score(item)
        scored = self.predictor.scored(record, item, quality, probabilities)
        if self.measures and scored.prediction.status == "ok":
            measured = await run_in_threadpool(
                measurements_of, record.signal, record.sampling_rate_hz, record.lead_names, record.sex
            )
            decided = self.predictor.with_measurements(scored.prediction, measured, record.age)  # its rule
            scored = replace(scored, prediction=decided)
        explanations = await self.explain(scored, methods, class_name) if methods else ()
        result_id = uuid.uuid4().hex
        self.results[result_id] = replace(scored, record=None)  # the scored input is kept, not the file's signal
        while len(self.results) > self.config.results_kept:
            self.results.popitem(last=False)
        body = Diagnosis(scored, self.meta, explanations).to_dict(include_input)
        return JSONResponse({"id": result_id, **body})  # plain data already: no recursive re-encoding

    def _check_explanation(
        self, methods: tuple[str, ...], class_name: str | None, known: tuple[str, ...] = EXPLANATIONS
    ) -> None:
        """Refuse an unknown class or method (of ``known``), and SHAP without a background, before any work."""
        if class_name is not None and class_name not in self.meta.class_names:
            raise RequestError(
                422, "unknown_class", f"unknown class {class_name!r}; choose from {', '.join(self.meta.class_names)}"
            )
        bad = [m for m in methods if m not in known]
        if bad:
            raise RequestError(
                422, "unknown_explanation", f"unknown explanation {bad[0]!r}; choose from {', '.join(known)}"
            )
        if "shap" in methods and self.background is None:
            raise RequestError(
                409,
                "no_shap_background",
                "SHAP needs a background: this server has none (start it with --background CACHE)",
            )

    async def _in_model_thread(self, function: Callable, *args):
        """``function(*args)`` in the one thread that runs the model."""
        return await asyncio.get_running_loop().run_in_executor(self.model_thread, function, *args)

    async def explain(self, scored: Scored, methods: tuple[str, ...], class_name: str | None):
        self._check_explanation(methods, class_name)
        return await self._in_model_thread(
            explain_scored,
            self.predictor.model,
            self.meta,
            scored,
            methods,
            class_name,
            self.background,
            self.config.shap_samples,
            self.measures and scored.prediction.status == "ok",  # no waves are placed in what is not an ECG
        )

    async def report(self, scored: Scored, method: str | None, class_name: str | None) -> bytes:
        """The one-page PDF of a scored record, rendered in the model's thread (any of `REPORT_EXPLANATIONS` drawn
        over its ECG). A page that cannot be drawn is a named error (``report_failed``), never a bare 500."""
        from ecglens.report.pdf import model_label, report_failure  # matplotlib loads when a report is asked for

        self._check_explanation(() if method is None else (method,), class_name, REPORT_EXPLANATIONS)
        label = model_label(self.predictor.bundle, self.meta)
        try:
            return await self._in_model_thread(
                report_pdf,
                self.predictor.model,
                self.meta,
                scored,
                label,
                method,
                class_name,
                self.background,
                self.config.shap_samples,
            )
        except Exception as error:
            logger.exception("the report of %s could not be drawn", scored.prediction.record_id)
            raise RequestError(500, "report_failed", report_failure(error)) from None

    def model_info(self) -> dict:
        meta = self.meta
        origin = meta.threshold_origin
        data = meta.training_data
        return {
            "class_names": list(meta.class_names),
            "label_space": {"name": meta.label_map.label, "source": meta.label_map.source},
            "thresholds": dict(zip(meta.class_names, meta.thresholds, strict=True)),
            "not_validated": dict(meta.not_validated),
            "threshold_origin": {
                "description": origin.describe(),
                "method": origin.method,
                "split": origin.split,
                "datasets": list(origin.datasets),
                "n_records": origin.n_records,
            },
            "sampling_rate_hz": meta.sampling_rate_hz,
            "lead_names": list(meta.lead_names),
            "policy": {"name": meta.policy.name, "seconds": meta.policy.seconds},
            "model": meta.model.name
            if meta.model.members == 1
            else f"ensemble of {meta.model.members} {meta.model.name}",
            "training_data": None
            if data is None
            else {
                "datasets": list(data.datasets),
                "n_train": data.n_train,
                "n_val": data.n_val,
                "n_test": data.n_test,
                "epoch": data.epoch,
                "label_profile": data.label_profile,
            },
            "explanations": [m for m in EXPLANATIONS if m != "shap" or self.background is not None],
            "limits": {
                "max_upload_mb": self.config.limits.max_upload_bytes / 2**20,
                "max_record_seconds": self.config.limits.max_record_seconds,
            },
            "calibrated": meta.temperatures is not None,
            "notice": self.notice,
            "examples_note": self.examples_note,
            "ecglens_version": __version__,
        }


def _hostname(netloc: str) -> str:
    """The host name of a Host header or URL authority, without port or IPv6 brackets, lower-case."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"kind": kind, "message": message}}, status_code=status, headers=headers)


@dataclass
class InFlight:
    """Requests being processed now (shared by the middleware and ``app.state.in_flight``)."""

    count: int = 0


class _Guard:
    """ASGI middleware: the token, the in-flight bound and the upload size, before any parsing; security headers."""

    def __init__(self, app, config: ServeConfig, in_flight: InFlight):
        self.app = app
        self.config = config
        self.in_flight = in_flight

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = self._with_headers(send)
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._foreign(headers)
        if refusal is not None:
            return await _error(403, *refusal)(scope, receive, send)
        if self.config.token and path.startswith("/api/") and path != "/api/health":
            given = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self.config.token.encode()):
                return await _error(
                    401,
                    "unauthorized",
                    "this server needs its token: send 'Authorization: "
                    "Bearer TOKEN' (the page reads it from ?token=TOKEN)",
                )(scope, receive, send)
        if method != "POST" and not path.startswith("/api/results/"):  # the work: diagnoses and explanations
            return await self.app(scope, receive, send)
        limits = self.config.limits
        if self.in_flight.count >= limits.max_in_flight:
            return await _error(
                503, "busy", f"{self.in_flight.count} requests in flight; try again shortly", {"Retry-After": "1"}
            )(scope, receive, send)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_upload_bytes:
            return await self._too_large(scope, receive, send)
        self.in_flight.count += 1
        try:
            try:
                body = await asyncio.wait_for(self._read_body(receive, limits.max_upload_bytes), limits.body_timeout_s)
            except TimeoutError:
                return await _error(
                    408, "request_timeout", f"the request body did not arrive within {limits.body_timeout_s:g} s"
                )(scope, receive, send)
            if body is None:
                return await self._too_large(scope, receive, send)
            await self.app(scope, self._replay(body), send)
        finally:
            self.in_flight.count -= 1

    def _foreign(self, headers: dict[str, str]) -> tuple[str, str] | None:
        """Why a request from another site or under another name is refused (kind, message), or None."""
        allowed = self.config.limits.allowed_hosts
        if "*" in allowed:
            return None
        host = headers.get("host", "")
        if _hostname(host) not in allowed:
            return (
                "forbidden_host",
                f"Host {host!r} is not one this server answers to (allowed: {', '.join(allowed)}; see --allowed-host)",
            )
        origin = headers.get("origin")
        if origin is not None and (
            urlsplit(origin).netloc.lower() != host.lower() or _hostname(urlsplit(origin).netloc) not in allowed
        ):
            return ("forbidden_origin", f"a page from {origin!r} may not use this server: only its own pages may")
        return None

    async def _too_large(self, scope, receive, send) -> None:
        limit = self.config.limits.max_upload_bytes / 2**20
        await _error(413, "upload_too_large", f"upload larger than {limit:g} MB")(scope, receive, send)

    @staticmethod
    async def _read_body(receive, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes) -> Callable[[], Awaitable[dict]]:
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return receive

    @staticmethod
    def _with_headers(send):
        async def wrapped(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
            await send(message)

        return wrapped


def create_app(config: ServeConfig) -> FastAPI:
    """The FastAPI application serving ``config.bundle`` (the model loads here, once)."""
    service = _Service(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        service.start()
        yield
        await service.stop()

    app = FastAPI(
        title="ecglens",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Diagnosis of 12-lead ECGs with explanations (research use only, not for clinical "
        'decisions). Errors are JSON: {"error": {"kind", "message"}}.',
    )
    app.state.service = service
    app.state.in_flight = InFlight()
    app.add_middleware(_Guard, config=config, in_flight=app.state.in_flight)
    _routes(app, service, config)
    return app


def _methods(explain: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.strip() for part in explain for m in part.split(",") if m.strip()))


def _routes(app: FastAPI, service: _Service, config: ServeConfig) -> None:
    """Every route: errors as JSON, the API, the page and its assets."""
    _error_handlers(app)
    _model_routes(app, service)
    _report_route(app, service)
    _fhir_route(app, service)
    _predict_route(app, service, config)
    _static_routes(app)


def _error_handlers(app: FastAPI) -> None:
    """Every error as JSON ``{"error": {"kind", "message"}}``."""

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, error: RequestError) -> JSONResponse:
        return _error(error.status, error.kind, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in error.errors()
        )
        return _error(422, "invalid_request", problems)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's and Starlette's own (a malformed multipart body)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 400: "bad_request", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return _error(error.status_code, kind, str(error.detail))


def _model_routes(app: FastAPI, service: _Service) -> None:
    """Health, the model, the examples and the explanations of recent results."""

    @app.get("/api/health", summary="Liveness")
    async def health() -> dict:
        return {"status": "ok", "ecglens_version": __version__, "model": service.meta.model.name}

    @app.get("/api/model", summary="The served model: classes, thresholds and their origin, rate, policy, data")
    async def model() -> dict:
        return service.model_info()

    @app.get(
        "/api/examples",
        summary="Example records with their known class: real PTB-XL records where the server "
        "has them (serve --examples), synthetic ones for a synthetic-only model",
    )
    async def examples() -> list[dict]:
        return [
            {
                "id": e.id,
                "class": e.class_name,
                "description": e.description,
                "source": e.source,
                "real": e.source != "synthetic",
                "statements": list(e.statements),
            }
            for e in service.examples.values()
        ]

    @app.post("/api/examples/{example_id}", summary="Diagnose an example record")
    async def diagnose_example(
        example_id: str,
        explain: list[str] = Form(default=[]),  # noqa: B008
        class_name: str | None = Form(default=None, alias="class"),
        include_input: bool = Form(default=False),
    ) -> JSONResponse:
        example = service.examples.get(example_id)
        if example is None:
            raise RequestError(404, "unknown_example", f"no example {example_id!r}; see GET /api/examples")
        return await service.diagnose(example.record, _methods(explain), class_name, include_input)

    @app.get("/api/results/{result_id}/explanations", summary="Explain a recent result for a class")
    async def explanations(
        result_id: str,
        method: list[str] = Query(default=["gradcam"]),  # noqa: B008
        class_name: str | None = Query(default=None, alias="class"),
    ) -> dict:
        scored = service.results.get(result_id)
        if scored is None:
            raise RequestError(
                404, "unknown_result", "no such result (only the most recent ones are kept): post the record again"
            )
        explained = await service.explain(scored, _methods(method), class_name)
        return {"id": result_id, "explanations": [e.to_dict(service.meta.lead_names) for e in explained]}

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return Response(json.dumps(app.openapi()), media_type="application/json")


def _report_route(app: FastAPI, service: _Service) -> None:
    """A recent result's one-page PDF report."""

    @app.get(
        "/api/results/{result_id}/report.pdf",
        summary="A recent result as a one-page PDF report (optionally with an explanation drawn over the ECG)",
        response_class=Response,
    )
    async def report(
        result_id: str,
        method: str | None = Query(default=None, description=", ".join(REPORT_EXPLANATIONS)),
        class_name: str | None = Query(default=None, alias="class"),
    ) -> Response:
        scored = service.results.get(result_id)
        if scored is None:
            raise RequestError(
                404, "unknown_result", "no such result (only the most recent ones are kept): post the record again"
            )
        content = await service.report(scored, method, class_name)
        name = safe_name(scored.prediction.record_id)
        return Response(
            content,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )


def _fhir_route(app: FastAPI, service: _Service) -> None:
    """A recent result as a FHIR R4 transaction Bundle (`ecglens.export.fhir`)."""

    @app.get(
        "/api/results/{result_id}/fhir",
        summary="A recent result as a FHIR R4 transaction Bundle: a DiagnosticReport (SNOMED CT conclusion codes, "
        "the one-page PDF as presentedForm), LOINC Observations of the measurements, the model as a Device and a "
        "Patient known by the record's pseudonym",
        response_class=Response,
    )
    async def fhir(
        result_id: str,
        pdf: bool = Query(default=True, description="Embed the one-page PDF report as presentedForm"),
    ) -> Response:
        from ecglens.export.fhir import ClassCodes, ModelIdentity, fhir_bundle

        scored = service.results.get(result_id)
        if scored is None:
            raise RequestError(
                404, "unknown_result", "no such result (only the most recent ones are kept): post the record again"
            )
        content = await service.report(scored, None, None) if pdf else None
        model = ModelIdentity.of(service.predictor.bundle, service.meta)
        try:
            bundle = fhir_bundle(scored.prediction, model, ClassCodes.of(service.meta), content)
        except ImportError as error:
            raise RequestError(501, "fhir_unavailable", str(error)) from None
        return Response(json.dumps(bundle, allow_nan=False), media_type="application/fhir+json")


def _predict_route(app: FastAPI, service: _Service, config: ServeConfig) -> None:
    """``POST /api/predict``: one uploaded record, read within the server's limits, diagnosed."""

    @app.post("/api/predict", summary="Diagnose one uploaded record (optionally explained)")
    async def predict(
        files: list[UploadFile] = File(  # noqa: B008
            ...,
            description="The record's file(s): a WFDB .hea with its .dat/.mat, a CPSC .mat, EDF, CSV or NumPy",
        ),
        sampling_rate: float | None = Form(default=None, gt=0, le=20000, description="Hz, for CSV/NumPy"),
        lead_order: str | None = Form(default=None, description="Comma-separated lead order of CSV/NumPy"),
        explain: list[str] = Form(default=[], description="gradcam and/or shap"),  # noqa: B008
        class_name: str | None = Form(default=None, alias="class", description="Class to explain"),
        include_input: bool = Form(default=False, description="Also return the scored input (mV) for drawing"),
    ) -> JSONResponse:
        if len(files) > config.limits.max_files:
            raise RequestError(
                422, "too_many_files", f"{len(files)} files; one record is at most {config.limits.max_files} files"
            )
        uploads = [Upload(f.filename or "record", await f.read()) for f in files]
        try:
            order = canonical_leads(lead_order.split(",")) if lead_order else None
        except ValueError as error:
            raise RequestError(422, "bad_lead_order", str(error)) from None
        record = await run_in_threadpool(
            read_upload,
            uploads,
            service.meta.lead_names,
            sampling_rate,
            order,
            config.limits.max_record_seconds,
            config.limits.max_decoded_values,
        )
        return await service.diagnose(record, _methods(explain), class_name, include_input)


def _static_routes(app: FastAPI) -> None:
    """The page and its assets, all served from the installed packages (no CDN)."""
    import plotly
    import swagger_ui_bundle

    assets = {
        "plotly.min.js": Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
        "swagger-ui-bundle.js": Path(swagger_ui_bundle.swagger_ui_path) / "swagger-ui-bundle.js",
        "swagger-ui.css": Path(swagger_ui_bundle.swagger_ui_path) / "swagger-ui.css",
    }
    for name in ("app.js", "style.css", "docs.js"):
        assets[name] = Path(str(STATIC / name))
    media = {".js": "text/javascript", ".css": "text/css"}

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(str(STATIC / "docs.html"), media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        path = assets.get(name)  # a fixed table: no request text ever becomes a path
        if path is None:
            raise HTTPException(404, f"no asset {name!r}")
        return FileResponse(path, media_type=media[path.suffix], headers={"Cache-Control": "max-age=3600"})
