import os
import re
from pathlib import Path

from conftest import known_signal, write_challenge_mat, write_wfdb
from ecglens.cli import main
from ecglens.data.cache import EcgCache


def test_help_lists_subcommands_and_examples(capsys):
    assert main(["--help"]) == 0
    assert "data" in capsys.readouterr().out
    for command in (["data", "summary"], ["data", "prepare"]):
        assert main([*command, "--help"]) == 0
        assert re.search(r"Examples?:\n", capsys.readouterr().out)


def test_prepare_and_summary(tmp_path, capsys):
    for i in range(4):
        write_challenge_mat(
            tmp_path,
            f"R{i}",
            known_signal(seed=i),
            dx="164889003" if i % 2 else "426783006",
            sex="Female" if i else "Male",
            age=str(40 + i),
        )
    assert (
        main(
            [
                "data",
                "prepare",
                f"demo=challenge:{tmp_path}",
                "--out",
                str(tmp_path / "c"),
                "--sampling-rate",
                "100",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert len(EcgCache(tmp_path / "c")) == 4
    assert main(["data", "summary", str(tmp_path), "--out", str(tmp_path / "s"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "| AF | 2 (50.00) | 0 (0.00) | 42.0 (1.4) |" in out
    assert (tmp_path / "s" / "table1.csv").is_file()


def test_bad_source_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "summary", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or directory" in capsys.readouterr().err


def _commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_subcommand_rejects_bad_arguments_without_a_traceback(capsys):
    from ecglens.cli import cli

    for command in _commands(cli):
        for args in ([*command, "--no-such-option"], [*command, "--help"]):
            code = main(list(args))
            captured = capsys.readouterr()
            assert "Traceback" not in captured.out + captured.err, args
            assert code == (0 if args[-1] == "--help" else 2), (args, code)


def test_a_users_mistake_is_one_line_and_a_non_zero_exit(tiny_run, tmp_path, capsys):
    bundle, cache, run = tiny_run.bundle, str(tiny_run.cache), str(Path(tiny_run.bundle).parent)
    cases = [
        (["data", "summary", str(tiny_run.data), "--label-profile", "seeed"], "label profile 'seeed'"),
        (
            ["explain", "gradcam", "--checkpoint", bundle, "--data", cache, "--class", "AFIB", "--out", str(tmp_path)],
            "unknown class 'AFIB'",
        ),
        (["train", "--data", cache, "--out", str(tmp_path / "r"), "--leads", "I,II,V7"], "unknown lead name 'V7'"),
        (["evaluate", "--checkpoint", bundle, "--data", str(tiny_run.data)], "ecglens data prepare"),
        (["export", "onnx", "--checkpoint", run], f"its bundle is {run}/best"),
        (["data", "summary", f"ptbx1:{tiny_run.data}"], "unknown source format 'ptbx1'"),
        (["train", "--data", cache, "--out", run], "pass --resume"),
        (["predict", "--checkpoint", bundle, "--device", "cuda:7", str(tiny_run.data)], "--device"),
    ]
    for args, expected in cases:
        code = main(args)
        err = capsys.readouterr().err
        assert code != 0 and expected in err and "Traceback" not in err, (args, err)
        assert len([line for line in err.splitlines() if line.lower().startswith("error")]) == 1, (args, err)


def test_predict_exit_codes(tiny_run, tmp_path, capsys):
    (tmp_path / "bad.hea").write_text("corrupt twelve 500 abc\n")
    assert (
        main(["predict", "--checkpoint", tiny_run.bundle, str(tmp_path / "bad.hea"), "--out", str(tmp_path / "o1")])
        == 1
    )
    assert "none of the 1 record(s) could be read" in capsys.readouterr().err
    good = sorted(tiny_run.data.glob("*.hea"))[0]
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                tiny_run.bundle,
                str(tmp_path / "bad.hea"),
                str(good),
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 0
    )
    assert "1 of 2 record(s) unreadable" in capsys.readouterr().err
    assert (
        main(["predict", "--checkpoint", tiny_run.bundle, str(tmp_path / "empty"), "--out", str(tmp_path / "o3")]) == 1
    )


def test_the_api_refuses_samples_by_leads(tiny_run):
    import numpy as np
    import pytest

    import ecglens

    predictor = ecglens.load_bundle(tiny_run.bundle, "cpu")
    signal = known_signal(2500)
    with pytest.raises(ValueError, match="samples x leads"):
        predictor.predict(signal.T, 500)
    with pytest.raises(ValueError, match="12 leads as rows"):
        predictor.predict(np.zeros((3, 100)), 500)


def test_progress_off_a_terminal_is_one_line_per_stage_and_quiet_is_silent(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "a"), "--n-records", "12", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and [line for line in err.splitlines() if "synth: 12 rec in" in line]
    assert main(["-q", "synth", "--out", str(tmp_path / "b"), "--n-records", "12", "--workers", "1"]) == 0
    assert capsys.readouterr().err == ""


def test_threads_option_bounds_spinning_and_sets_the_thread_count(monkeypatch, capsys):
    import torch

    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    try:
        assert main(["--threads", "1", "data", "--help"]) == 0
        assert torch.get_num_threads() == 1 and os.environ["GOMP_SPINCOUNT"] == "10000"
    finally:
        torch.set_num_threads(before)
    assert main(["--threads", "0", "synth", "--out", "x"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_min_likelihood_reaches_the_cache(tmp_path):
    import pandas as pd

    root = tmp_path / "ptbxl"
    (root / "records100" / "00000").mkdir(parents=True)
    write_wfdb(root / "records100" / "00000", "00001_lr", known_signal(1000), fs=100)
    pd.DataFrame(
        {
            "ecg_id": [1],
            "patient_id": [7.0],
            "scp_codes": ["{'NORM': 80.0, 'IMI': 15.0, 'SR': 0.0}"],
            "strat_fold": [1],
            "filename_lr": ["records100/00000/00001_lr"],
            "filename_hr": ["records500/00000/00001_hr"],
        }
    ).to_csv(root / "ptbxl_database.csv", index=False)
    for threshold, expected in (("0", ""), ("50", "SNR")):
        out = tmp_path / f"cache{threshold}"
        assert (
            main(
                [
                    "data",
                    "prepare",
                    f"ptbxl100:{root}",
                    "--sampling-rate",
                    "100",
                    "--out",
                    str(out),
                    "--min-likelihood",
                    threshold,
                    "--workers",
                    "1",
                ]
            )
            == 0
        )
        assert (EcgCache(out).index["classes"].fillna("").tolist(), EcgCache(out).spec.min_likelihood) == (
            [expected],
            float(threshold),
        )


def test_a_predict_that_reads_nothing_prints_no_empty_table_and_no_empty_wrote(tmp_path, capsys):
    """Issue 40: a failed predict printed an empty table header and "wrote " with nothing after it."""
    (tmp_path / "x.hea").write_text("garbage\n")
    assert main(["predict", str(tmp_path / "x.hea"), "--out", str(tmp_path / "out")]) == 1
    out, err = capsys.readouterr()
    assert "decisions (probability)" not in out and "wrote" not in out
    assert "none of the 1 record(s) could be read" in err and "no signal count" in err


def test_serve_prints_the_starter_notice_once(monkeypatch, capsys):
    """Issue 40: ecglens serve printed the starter notice twice (the --checkpoint option and the server)."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # start nothing; the notice comes before
    assert main(["serve", "--port", "8799"]) == 0
    out, err = capsys.readouterr()
    assert (out + err).count("using the starter model") == 1 and "serving starter at http://127.0.0.1:8799" in out
