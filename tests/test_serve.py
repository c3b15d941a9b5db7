"""The HTTP API: every format, every kind of bad input as a 4xx JSON error, limits, the token, concurrency."""

import asyncio
import json
import time

import numpy as np
import pytest
import scipy.io

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

import ecglens
from conftest import (
    RunningServer,
    known_signal,
    write_challenge_mat,
    write_cpsc_mat,
    write_wfdb,
)
from ecglens.cli import main
from ecglens.leads import LEAD_NAMES
from ecglens.serve import ServeConfig, ServeLimits, create_app
from ecglens.serve.server import is_loopback, serve_config


def _app(tiny_run):
    return create_app(
        ServeConfig(
            tiny_run.bundle,
            "cpu",
            background_caches=(str(tiny_run.cache),),
            limits=ServeLimits(max_upload_bytes=2 * 2**20, max_record_seconds=60),
        )
    )


@pytest.fixture(scope="module")
def app(tiny_run):
    return _app(tiny_run)


@pytest.fixture
def own_app(tiny_run):
    """An app of its own, for a test that runs a real server (an app's lifespan belongs to one server)."""
    return _app(tiny_run)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def signal():
    return known_signal(2500, seed=42)  # 5 s at 500 Hz


def _files(*paths):
    return [("files", (p.name, p.read_bytes())) for p in paths]


def _post(client, paths, **data):
    return client.post("/api/predict", files=_files(*paths), data=data)


def test_every_format_gives_the_prediction_of_the_library(client, tiny_run, signal, tmp_path):
    from test_predict import _write_edf

    reference = ecglens.load_bundle(tiny_run.bundle, "cpu").predict(signal, 500, LEAD_NAMES)
    write_wfdb(tmp_path, "wfdb", signal)
    write_challenge_mat(tmp_path, "chal", signal)
    write_cpsc_mat(tmp_path, "A0001", signal)
    np.savetxt(tmp_path / "rec.csv", signal.T, delimiter=",", header=",".join(LEAD_NAMES), comments="")
    order = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6]
    np.save(tmp_path / "rec.npy", signal[order])
    _write_edf(tmp_path / "rec.edf", signal, 500)
    cases = {
        "wfdb": _post(client, [tmp_path / "wfdb.hea", tmp_path / "wfdb.dat"], include_input="true"),
        "challenge": _post(client, [tmp_path / "chal.mat", tmp_path / "chal.hea"]),
        "cpsc": _post(client, [tmp_path / "A0001.mat"]),
        "csv": _post(client, [tmp_path / "rec.csv"], sampling_rate="500"),
        "npy": _post(
            client, [tmp_path / "rec.npy"], sampling_rate="500", lead_order=",".join(LEAD_NAMES[i] for i in order)
        ),
        "edf": _post(client, [tmp_path / "rec.edf"]),
    }
    for kind, response in cases.items():
        assert response.status_code == 200, (kind, response.text)
        body = response.json()
        for name, p in reference.probabilities.items():
            assert body["probabilities"][name] == pytest.approx(p, abs=2e-4), (kind, name)
        probabilities, thresholds = body["probabilities"], body["thresholds"]
        assert body["decisions"] == [
            n for n in probabilities if probabilities[n] >= thresholds[n] and n not in body["not_validated"]
        ]
    assert cases["wfdb"].json()["record_id"] == "wfdb" and len(cases["wfdb"].json()["input"]["signal"]) == 12
    assert "input" not in cases["challenge"].json()  # the scored input only when asked (include_input)


def test_explanations_explain_the_scored_input(client, signal, tmp_path):
    write_wfdb(tmp_path, "r", signal)
    body = _post(
        client, [tmp_path / "r.hea", tmp_path / "r.dat"], explain="gradcam", include_input="true", **{"class": "AF"}
    ).json()
    (cam,) = body["explanations"]
    assert cam["method"] == "gradcam" and cam["class"] == "AF"
    assert cam["probability"] == pytest.approx(body["probabilities"]["AF"])
    assert len(cam["time_map"]) == len(body["input"]["signal"][0]) and "per" in cam
    shap = client.get(f"/api/results/{body['id']}/explanations", params={"method": "shap", "class": "AF"}).json()
    (explained,) = shap["explanations"]
    assert set(explained["lead_values"]) == set(LEAD_NAMES)
    check = explained["additivity"]  # the viewer's caption is built from these, not from a fixed sentence
    assert check["units"] == "probability" and check["lead_sum"] == pytest.approx(
        sum(explained["lead_values"].values()), abs=1e-4
    )
    assert check["expected"] == pytest.approx(check["probability"] - check["background_mean"])
    assert check["probability"] == pytest.approx(body["probabilities"]["AF"])
    assert abs(check["lead_sum"] - check["expected"]) <= 5 * check["standard_error"] + 1e-6
    script = client.get("/static/app.js").text
    assert "explanation.additivity" in script and "add up to the probability minus" not in script


def _bad_inputs(tmp_path, signal):
    write_wfdb(tmp_path, "ok", signal)
    write_challenge_mat(tmp_path, "eleven", known_signal(2500, n_leads=11), lead_names=LEAD_NAMES[:11])
    write_challenge_mat(tmp_path, "nan", signal)
    values = scipy.io.loadmat(tmp_path / "nan.mat")["val"].astype(float)
    values[2, 5:9] = np.nan
    scipy.io.savemat(tmp_path / "nan.mat", {"val": values}, format="4")
    (tmp_path / "corrupt.hea").write_text("corrupt twelve 500 abc\n")
    (tmp_path / "corrupt.dat").write_bytes(b"\0" * 100)
    write_wfdb(tmp_path, "long", known_signal(500 * 70, seed=1))  # 70 s, over the 60-s limit of this app
    (tmp_path / "big.csv").write_bytes(b"0," * (1_200_000))  # 2.4 MB, over the 2 MB limit
    (tmp_path / "notes.txt").write_text("not an ECG")
    np.save(tmp_path / "x.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)  # a pickle inside
    np.savetxt(tmp_path / "rate.csv", signal.T, delimiter=",")
    d = tmp_path
    return {
        "corrupt header": ([d / "corrupt.hea", d / "corrupt.dat"], {}, 422, "unreadable_record"),
        "missing signal file of a pair": ([d / "ok.hea"], {}, 422, "missing_signal_file"),
        "signal file without its header": ([d / "ok.dat"], {}, 422, "missing_header"),
        "wrong lead count": ([d / "eleven.hea", d / "eleven.mat"], {}, 422, "unreadable_record"),
        "NaN samples": ([d / "nan.hea", d / "nan.mat"], {}, 422, "unreadable_record"),
        "record too long": ([d / "long.hea", d / "long.dat"], {}, 422, "record_too_long"),
        "oversized upload": ([d / "big.csv"], {"sampling_rate": "500"}, 413, "upload_too_large"),
        "unknown format": ([d / "notes.txt"], {}, 415, "unknown_format"),
        "CSV without a sampling rate": ([d / "rate.csv"], {}, 422, "sampling_rate_required"),
        "a header with a stray file": ([d / "ok.hea", d / "ok.dat", d / "notes.txt"], {}, 415, "unknown_format"),
        "pickled NumPy array": ([d / "x.npy"], {"sampling_rate": "500"}, 422, "unreadable_record"),
        "bad lead order": ([d / "x.npy"], {"sampling_rate": "500", "lead_order": "I,II,V7"}, 422, "bad_lead_order"),
        "unknown class": ([d / "ok.hea", d / "ok.dat"], {"explain": "gradcam", "class": "AFIB"}, 422, "unknown_class"),
        "unknown explanation": ([d / "ok.hea", d / "ok.dat"], {"explain": "lime"}, 422, "unknown_explanation"),
        "negative sampling rate": ([d / "x.npy"], {"sampling_rate": "-5"}, 422, "invalid_request"),
        "two records": ([d / "ok.hea", d / "ok.dat", d / "nan.hea"], {}, 422, "several_records"),
    }


def test_bad_input_gets_a_named_4xx_json_error(client, tmp_path, signal):
    table = []
    for label, (paths, data, status, kind) in _bad_inputs(tmp_path, signal).items():
        response = _post(client, paths, **data)
        body = response.json()
        table.append((label, response.status_code, body["error"]["message"]))
        assert (response.status_code, body["error"]["kind"]) == (status, kind), (label, body)
        assert "Traceback" not in response.text
    no_files = client.post("/api/predict", data={"sampling_rate": "500"})
    assert no_files.status_code == 422 and no_files.json()["error"]["kind"] == "invalid_request"
    assert client.post("/api/examples/nope").status_code == 404
    assert client.get("/api/results/nope/explanations").json()["error"]["kind"] == "unknown_result"
    print("\n".join(f"{label} | {status} | {message}" for label, status, message in table))


def test_uploaded_names_are_never_paths(client, signal, tmp_path):
    write_wfdb(tmp_path, "ok", signal)
    files = [
        ("files", ("../../../../tmp/escaped.hea", (tmp_path / "ok.hea").read_bytes())),
        ("files", ("/etc/passwd.dat", (tmp_path / "ok.dat").read_bytes())),
    ]
    response = client.post("/api/predict", files=files)
    assert response.status_code == 200 and response.json()["record_id"] == "escaped"
    assert not (tmp_path.parent / "escaped.hea").exists()


def test_busy_server_answers_503_with_retry_after(app, client, signal, tmp_path):
    write_wfdb(tmp_path, "ok", signal)
    app.state.in_flight.count = 64
    try:
        response = _post(client, [tmp_path / "ok.hea", tmp_path / "ok.dat"])
    finally:
        app.state.in_flight.count = 0
    assert response.status_code == 503 and response.headers["retry-after"] == "1"


def test_model_info_examples_and_page(client):
    model = client.get("/api/model").json()
    assert model["class_names"][0] == "SNR" and model["threshold_origin"]["method"] == "F1-optimal"
    assert set(model["explanations"]) == {"gradcam", "shap"}
    assert client.get("/api/examples").json() == []  # not trained on synthetic records: no synthetic examples
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"] and "<script>" not in page.text
    for asset in ("plotly.min.js", "app.js", "style.css", "swagger-ui-bundle.js"):
        assert client.get(f"/static/{asset}").status_code == 200
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]
    assert "swagger-ui-bundle.js" in client.get("/docs").text


def test_the_token(tiny_run, signal, tmp_path):
    app = create_app(ServeConfig(tiny_run.bundle, "cpu", token="s3cret"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/model").status_code == 401
        assert client.get("/api/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/health").status_code == 200 and client.get("/").status_code == 200
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    with pytest.raises(ValueError, match="--token"):
        serve_config(tiny_run.bundle, "0.0.0.0", None)
    assert serve_config(tiny_run.bundle, "0.0.0.0", "t").token == "t"


def test_serve_command_errors_are_one_line(tiny_run, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--checkpoint", str(tmp_path / "nope")]) == 2
    assert "is not a bundle directory" in capsys.readouterr().err
    assert main(["serve", "--checkpoint", tiny_run.bundle, "--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--token" in err


@pytest.mark.slow
def test_concurrent_requests_match_sequential_ones_and_are_batched(own_app, tmp_path):
    import httpx2 as httpx

    paths = []
    for i in range(16):
        write_wfdb(tmp_path, f"r{i}", known_signal(2500 + 250 * (i % 3), seed=i))
        paths.append((tmp_path / f"r{i}.hea", tmp_path / f"r{i}.dat"))
    app = own_app
    server = RunningServer(app)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            sequential = [client.post("/api/predict", files=_files(*p)).json()["probabilities"] for p in paths]
        app.state.service.batcher.batch_sizes.clear()

        async def together():
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                responses = await asyncio.gather(*(client.post("/api/predict", files=_files(*p)) for p in paths))
            return [r.json()["probabilities"] for r in responses]

        concurrent = asyncio.run(together())
    finally:
        server.stop()
    for a, b in zip(sequential, concurrent, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert max(app.state.service.batcher.batch_sizes) > 1


@pytest.mark.slow
def test_load_on_localhost_never_fails(own_app, signal, tmp_path):
    import httpx2 as httpx

    write_wfdb(tmp_path, "load", signal)
    files = _files(tmp_path / "load.hea", tmp_path / "load.dat")
    server = RunningServer(own_app)
    statuses, invalid = [], 0

    async def client_loop(deadline):
        nonlocal invalid
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            while time.time() < deadline:
                response = await client.post("/api/predict", files=files)
                statuses.append(response.status_code)
                try:
                    json.loads(response.text)
                except ValueError:
                    invalid += 1

    async def run():
        deadline = time.time() + 3
        await asyncio.gather(*(client_loop(deadline) for _ in range(8)))

    try:
        asyncio.run(run())
    finally:
        server.stop()
    assert statuses and invalid == 0 and all(status == 200 for status in statuses), set(statuses)


def test_oversized_uploads_are_refused_with_or_without_a_declared_length(client):
    big = b"x" * (3 * 2**20)  # over this app's 2 MB
    declared = client.post("/api/predict", content=big, headers={"content-type": "multipart/form-data; boundary=b"})
    chunked = client.post(
        "/api/predict",
        content=iter([big[: 2**20], big[2**20 :]]),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )  # no Content-Length
    assert "content-length" not in {k.lower() for k in chunked.request.headers}
    for response in (declared, chunked):
        assert response.status_code == 413 and response.json()["error"]["kind"] == "upload_too_large"


def test_a_record_that_cannot_be_interpreted_gets_no_decisions(client, tmp_path):
    write_wfdb(tmp_path, "flat", np.zeros((12, 2500)), fs=500)
    response = _post(client, [tmp_path / "flat.hea", tmp_path / "flat.dat"])
    body = response.json()
    assert response.status_code == 200 and body["status"] == "not interpretable" and body["decisions"] == []
    assert body["reasons"] and body["probabilities"]  # the viewer shows them, never a decision


# -- a hostile page, a slow client, a bomb: what an independent attack on the server found ---------------------------


def test_other_sites_pages_and_foreign_host_names_are_refused(client, tiny_run, signal, tmp_path):
    write_wfdb(tmp_path, "r", signal)
    files = _files(tmp_path / "r.hea", tmp_path / "r.dat")
    evil = client.post("/api/predict", files=files, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"]["kind"] == "forbidden_origin"
    rebound = client.get("/api/model", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 403 and rebound.json()["error"]["kind"] == "forbidden_host"
    own = client.post("/api/predict", files=files, headers={"Origin": "http://127.0.0.1"})
    assert own.status_code == 200
    with TestClient(
        create_app(serve_config(tiny_run.bundle, "127.0.0.1", None, allowed_hosts=["ecg.lan"])),
        base_url="http://ecg.lan:8000",
    ) as named:
        assert named.get("/api/model").status_code == 200
        assert named.get("/api/model", headers={"Origin": "http://other.lan:8000"}).status_code == 403


def test_malformed_multipart_and_a_thousand_files_answer_in_the_documented_shape(client):
    broken = client.post(
        "/api/predict", content=b"--x\r\nnot a part", headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    many = client.post("/api/predict", files=[("files", (f"f{i}.csv", b"1")) for i in range(1001)])
    for response in (broken, many):
        assert 400 <= response.status_code < 500
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"kind", "message"}, body


def test_a_zlib_bomb_upload_is_refused_before_it_inflates(client, tmp_path):
    import resource

    from test_hostile import _mat_bomb

    (tmp_path / "bomb.hea").write_text(
        "\n".join(["bomb 12 500 5000"] + [f"bomb.mat 16+24 1000/mV 16 0 0 0 0 {lead}" for lead in LEAD_NAMES]) + "\n"
    )
    # 12 x 8 M int16: 192 MB once inflated, under the readers' own limit but over this server's budget
    _mat_bomb(tmp_path / "bomb.mat", "val", (12, 8_000_000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    response = _post(client, [tmp_path / "bomb.hea", tmp_path / "bomb.mat"])
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    assert response.status_code == 413 and response.json()["error"]["kind"] == "record_too_large", response.text
    assert grown < 300, f"peak memory grew by {grown:.0f} MB"


def test_slow_uploads_time_out_and_free_their_slots(tiny_run):
    import socket

    config = serve_config(tiny_run.bundle, "127.0.0.1", None, max_in_flight=2, body_timeout_s=3.0)
    server = RunningServer(create_app(config))
    try:
        started = time.monotonic()
        tricklers = []
        for _ in range(2):  # both slots taken by clients that announce a body and send a byte of it
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(
                b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                b"boundary=x\r\nContent-Length: 100000\r\n\r\n-"
            )
            tricklers.append(sock)
        import httpx

        with httpx.Client(base_url=server.url, timeout=30) as http:
            held = None  # a busy machine may take a moment to give both slots to the tricklers
            while held != 503 and time.monotonic() - started < 2.5:
                held = http.post("/api/predict", files={"files": ("a.csv", b"1")}).status_code
                time.sleep(0.05)
            assert held == 503  # slots held
            time.sleep(max(0.0, started + 3.5 - time.monotonic()))  # past the body timeout: both slots free again
            answer = http.post("/api/predict", files={"files": ("a.csv", b"1")}, data={"sampling_rate": "500"})
            assert answer.status_code == 422 and answer.json()["error"]["kind"] == "unreadable_record"
        replies = [sock.recv(4096) for sock in tricklers]
        assert all(b" 408 " in reply.split(b"\r\n")[0] for reply in replies), replies
        for sock in tricklers:
            sock.close()
    finally:
        server.stop()


@pytest.mark.realdata
def test_real_examples_come_with_their_own_labels(tiny_run, shared_data):
    config = serve_config(tiny_run.bundle, "127.0.0.1", None, examples=str(shared_data / "ptb-xl"))
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        examples = client.get("/api/examples").json()
        assert {e["class"] for e in examples} >= {"SNR", "AF", "LBBB", "RBBB"}
        assert all(e["real"] and "CC BY 4.0" in e["source"] and e["statements"] for e in examples)
        for example in examples[:3]:
            result = client.post(f"/api/examples/{example['id']}").json()
            assert result["record_id"] == example["id"].removeprefix("ptbxl-")
            assert result["true_labels"] == [example["class"]]  # the record's own statements, mapped


def test_the_viewer_reports_measurements_when_asked(tiny_run, tmp_path):
    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    from ecglens.synth.cohort import SynthConfig, write_cohort

    write_cohort(SynthConfig(n_records=1, sampling_rate_hz=500.0, seed=3), tmp_path / "synth", progress=False)
    header = next((tmp_path / "synth").rglob("*.hea"))
    files = [header, header.with_suffix(".dat")] if header.with_suffix(".dat").exists() else [header]
    files += [p for p in header.parent.glob(header.stem + ".mat")]
    with TestClient(
        create_app(ServeConfig(tiny_run.bundle, "cpu", measurements=True)), base_url="http://127.0.0.1"
    ) as c:
        result = _post(c, files, explain="gradcam", **{"class": "SNR"}).json()
        later = c.get(f"/api/results/{result['id']}/explanations", params={"method": "gradcam", "class": "AF"})
    measured = result["measurements"]
    assert 40 <= measured["heart_rate_bpm"] <= 180 and measured["qrs_ms"] > 0
    assert measured["qtc_formulas"]["fridericia"] == "QT / RR^(1/3)" and "normal_ranges" in measured
    # each explanation placed among the scored input's own waves, with its plausibility beside chance
    for waves in (result["explanations"][0]["waves"], later.json()["explanations"][0]["waves"]):
        assert set(waves["shares"]) == {"P", "PR", "QRS", "ST", "T", "rest"} and "U-Net" in waves["waves_from"]
        assert sum(waves["time_shares"].values()) == pytest.approx(1.0) and 0 < waves["chance"] < 1
        assert waves["has_evidence"] == (waves["plausibility"] is not None)
        assert 0 < waves["edge_plausibility"] < 1  # the ECG's own slope among the same waves: the null beside it
    with TestClient(create_app(ServeConfig(tiny_run.bundle, "cpu")), base_url="http://127.0.0.1") as c:
        plain = _post(c, files, explain="gradcam").json()
        assert plain["measurements"] is None  # not asked for: not computed
        assert "waves" not in plain["explanations"][0]


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("<b>x</b>.hea", "<b>x</b>"),
        ("../../tmp/escaped.hea", "escaped"),
        ("C:\\fakepath\\ok.hea", "ok"),
        ("x.HEA", "x"),
    ],
)
def test_an_uploads_record_id_is_its_name_never_a_cut_of_markup(name, stem):
    from ecglens.serve.uploads import Upload

    assert Upload(name, b"").stem == stem


@pytest.mark.realdata
def test_a_clinical_uploads_message_keeps_its_words(shared_data):
    from ecglens.serve.uploads import RequestError, Upload, read_upload

    cut = (shared_data / "clinical" / "scp" / "Example.scp").read_bytes()[:3000]
    with pytest.raises(RequestError) as caught:
        read_upload([Upload("record.scp", cut)], LEAD_NAMES)
    message = str(caught.value)
    assert message.startswith("ecg-") and "SCP-ECG record declares" in message, message  # "record" is a word here


def _result_url(client, signal, tmp_path) -> str:
    write_wfdb(tmp_path, "r", signal)
    return f"/api/results/{_post(client, [tmp_path / 'r.hea', tmp_path / 'r.dat']).json()['id']}/report.pdf"


def test_the_report_draws_guided_gradcam_as_it_documents(client, signal, tmp_path):
    url = _result_url(client, signal, tmp_path)
    guided = client.get(url, params={"method": "guided-gradcam", "class": "AF"})
    assert guided.status_code == 200 and guided.content.startswith(b"%PDF"), guided.text[:300]
    assert client.get(url, params={"method": "nonsense"}).json()["error"]["kind"] == "unknown_explanation"
    described = client.get("/openapi.json").json()["paths"]["/api/results/{result_id}/report.pdf"]["get"]
    assert "guided-gradcam" in json.dumps(described["parameters"])


def test_a_report_that_fails_is_a_named_json_error(client, signal, tmp_path, monkeypatch):
    """A page that cannot be drawn answers ``report_failed`` as JSON (never a bare 500 page), and the server goes
    on answering."""
    from ecglens.report import pdf

    url = _result_url(client, signal, tmp_path)

    def fails(*args, **kwargs):
        raise IndexError("string index out of range")

    monkeypatch.setattr(pdf, "record_pdf", fails)
    failed = client.get(url)
    assert failed.status_code == 500 and failed.headers["content-type"] == "application/json"
    assert failed.json() == {
        "error": {"kind": "report_failed", "message": "report not written: IndexError: string index out of range"}
    }
    monkeypatch.undo()
    assert client.get(url).status_code == 200


def test_the_viewer_refuses_noise_and_shows_a_heart_rate_warning(tiny_run, tmp_path, monkeypatch):
    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    from ecglens.synth.beats import regular_rhythm
    from ecglens.waves import delineate

    write_wfdb(tmp_path, "noise", np.random.default_rng(7).normal(0, 0.3, (12, 5000)))
    monkeypatch.setattr(delineate, "SHORT_REFRACTORY_S", delineate.REFRACTORY_S)  # the detector left at 110 bpm
    monkeypatch.setattr(delineate, "DEFAULT_METHOD", "prominence")  # (the U-Net finds all 220 beats itself)
    write_wfdb(tmp_path, "fast", np.round(regular_rhythm(220, 10.0, 500.0), 3))
    with TestClient(
        create_app(ServeConfig(tiny_run.bundle, "cpu", measurements=True)), base_url="http://127.0.0.1"
    ) as c:
        noise = _post(c, [tmp_path / "noise.hea", tmp_path / "noise.dat"], explain="gradcam").json()
        fast = _post(c, [tmp_path / "fast.hea", tmp_path / "fast.dat"]).json()
    assert noise["status"] == "not interpretable" and noise["decisions"] == [] and noise["measurements"] is None
    assert "no repeatable beats" in " ".join(noise["reasons"])
    assert "waves" not in noise["explanations"][0]  # explained (the viewer shows why), never placed among waves
    assert fast["status"] == "ok" and fast["measurements"]["heart_rate_bpm"] == pytest.approx(110, rel=0.03)
    assert any(w.startswith("heart rate uncertain") for w in fast["warnings"])  # the viewer lists warnings


def test_the_api_and_the_viewer_flag_snr_decided_beside_a_met_iavb_criterion(tiny_run, signal, tmp_path, monkeypatch):
    """The served JSON carries the criteria and the flag; the viewer's script renders the flag beside the decisions."""
    pytest.importorskip("neurokit2", reason="measurements need pip install 'ecglens[waves]'")
    import dataclasses

    import ecglens.serve.app as served
    from ecglens.predict import Predictor
    from ecglens.waves.measure import Measurements

    pr_338 = Measurements(70.0, 20.0, 338.0, 90.0, 380.0, 410.0, 400.0, 50.0, 40.0, 40.0, 12, "hand-built")
    monkeypatch.setattr(served, "measurements_of", lambda *args: pr_338)
    scored = Predictor.scored

    def decided_snr(self, *args, **kwargs):  # whatever the tiny model says, the record is decided SNR
        item = scored(self, *args, **kwargs)
        return dataclasses.replace(item, prediction=dataclasses.replace(item.prediction, decisions=("SNR",)))

    monkeypatch.setattr(Predictor, "scored", decided_snr)
    write_wfdb(tmp_path, "iavb", signal)
    with TestClient(
        create_app(ServeConfig(tiny_run.bundle, "cpu", measurements=True)), base_url="http://127.0.0.1"
    ) as c:
        result = _post(c, [tmp_path / "iavb.hea", tmp_path / "iavb.dat"]).json()
        script = c.get("/static/app.js").text
    assert result["decisions"] == ["SNR"]
    assert result["disagreements"] == ["model: SNR; criteria: first-degree AV block (PR 338 ms > 200 ms)"]
    assert result["criteria"]["met"] == ["IAVB"] and result["criteria"]["classes"]["IAVB"]["status"] == "met"
    assert '$("disagreements")' in script and "result.disagreements" in script


def test_a_ptbxl_upload_keeps_the_id_the_cli_gives_it(client, signal, tmp_path):
    from ecglens.io import read_record

    write_wfdb(tmp_path, "00338_hr", signal)
    response = _post(client, [tmp_path / "00338_hr.hea", tmp_path / "00338_hr.dat"])
    assert response.status_code == 200 and response.json()["record_id"] == "338"
    assert read_record(tmp_path / "00338_hr.hea").record_id == "338"  # the CLI's id, outside PTB-XL's folders too


def test_a_result_is_a_valid_fhir_bundle_with_its_pdf(client, signal, tmp_path):
    pytest.importorskip("fhir.resources", reason="FHIR output needs pip install 'ecglens[hospital]'")
    import base64

    from fhir.resources.R4B.bundle import Bundle

    url = _result_url(client, signal, tmp_path).removesuffix("/report.pdf")
    answer = client.get(f"{url}/fhir")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    Bundle.model_validate(bundle)
    (report,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    assert base64.b64decode(report["presentedForm"][0]["data"]).startswith(b"%PDF")
    (patient,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert patient["identifier"][0]["system"] == "urn:ecglens:pseudonym" and "name" not in patient
    bare = client.get(f"{url}/fhir", params={"pdf": "false"}).json()
    assert "presentedForm" not in json.dumps(bare)
    assert client.get("/api/results/nonsense/fhir").json()["error"]["kind"] == "unknown_result"


def _examples_folder(shared_data, folder):
    """The folder 'ecglens data download examples' fills, made here from the shared sample's copies."""
    from ecglens.io.example_set import example_checksums

    for path, _ in example_checksums():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes((shared_data / "ptb-xl" / path).read_bytes())
    return folder


@pytest.mark.realdata
def test_serve_uses_the_fetched_examples_and_diagnoses_one(shared_data, tmp_path, monkeypatch):
    from ecglens.io.example_set import CREDIT, EXAMPLES

    folder = _examples_folder(shared_data, tmp_path / "examples")
    monkeypatch.setenv("ECGLENS_EXAMPLES", str(folder))
    monkeypatch.delenv("ECGLENS_DATA", raising=False)
    config = serve_config(None, "127.0.0.1", None)  # what 'ecglens serve' with no options does: the starter model
    assert config.examples_root == str(folder)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        examples = client.get("/api/examples").json()
        assert [(e["id"], e["class"]) for e in examples] == [(f"ptbxl-{e.ecg_id}", e.class_name) for e in EXAMPLES]
        assert all(e["real"] and e["source"].startswith(CREDIT) for e in examples)
        assert client.get("/api/model").json()["examples_note"] is None
        pvc = next(e for e in examples if e["class"] == "PVC")
        result = client.post(f"/api/examples/{pvc['id']}").json()
        assert result["record_id"] == "1633" and result["true_labels"] == ["PVC"]
        assert set(result["probabilities"]) == set(result["thresholds"]) >= {"SNR", "PVC"}
        assert 'id="examples-credit"' in client.get("/").text


def test_without_examples_the_server_and_the_viewer_say_how_to_fetch_them(tiny_run, tmp_path, monkeypatch, capsys):
    import uvicorn

    from ecglens.serve.server import run_server

    monkeypatch.setenv("ECGLENS_EXAMPLES", str(tmp_path / "none yet"))
    monkeypatch.delenv("ECGLENS_DATA", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    run_server(tiny_run.bundle, device="cpu")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("serving ")
    assert "'ecglens data download examples'" in lines[0] and "172 kB" in lines[0] and "none yet" in lines[0]
    with TestClient(create_app(serve_config(tiny_run.bundle, "127.0.0.1", None)), base_url="http://127.0.0.1") as c:
        assert c.get("/api/examples").json() == []
        assert c.get("/api/model").json()["examples_note"] == lines[0]
