from conftest import known_signal, write_challenge_mat
from ecglens.cache import EcgCache
from ecglens.cli import main


def test_help_lists_subcommands_and_examples(capsys):
    assert main(["--help"]) == 0
    assert "data" in capsys.readouterr().out
    for command in (["data", "summary"], ["data", "prepare"]):
        assert main([*command, "--help"]) == 0
        assert "Example:" in capsys.readouterr().out


def test_prepare_and_summary(tmp_path, capsys):
    for i in range(4):
        write_challenge_mat(tmp_path, f"R{i}", known_signal(seed=i), dx="164889003" if i % 2 else "426783006",
                            sex="Female" if i else "Male", age=str(40 + i))
    assert main(["data", "prepare", f"demo=challenge:{tmp_path}", "--out", str(tmp_path / "c"),
                 "--sampling-rate", "100", "--workers", "1"]) == 0
    assert len(EcgCache(tmp_path / "c")) == 4
    assert main(["data", "summary", str(tmp_path), "--out", str(tmp_path / "s"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "| AF | 2 (50.00) | 0 (0.00) | 42.0 (1.4) |" in out
    assert (tmp_path / "s" / "table1.csv").is_file()


def test_bad_source_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "summary", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or directory" in capsys.readouterr().err
