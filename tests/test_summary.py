import pytest

from conftest import known_signal, write_challenge_mat
from ecglens.data.cache import EcgCache, build_cache
from ecglens.data.summary import summarize_index, write_summaries
from ecglens.io import parse_source


def test_summary_from_a_cache_index_with_unknown_sex_and_age(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_challenge_mat(data, "R1", known_signal(), dx="164889003", sex="Male", age="70")
    write_challenge_mat(data, "R2", known_signal(), dx="164889003", sex="Unknown", age="NaN")
    write_challenge_mat(data, "R3", known_signal(2000), dx="426783006", sex="Female", age="50")
    build_cache([parse_source(f"challenge:{data}")], tmp_path / "cache", 250, workers=1, progress=False)
    cache = EcgCache(tmp_path / "cache")
    (summary,) = summarize_index(cache.index, cache.issues(), "strict", cache.sampling_rate_hz)
    af = summary.table.loc["AF"]
    assert (af["count"], af["male"], af["male_percent"], af["age_mean"]) == (2, 1, 100.0, 70.0)
    assert summary.length_seconds["max"] == 4.0 and summary.n_with_target == 3
    paths = write_summaries([summary], tmp_path / "out")
    assert "| AF | 2 (66.67) | 1 (100.00) | 70.0 (-) |" in paths[0].read_text()


def test_datasets_keep_the_given_order_and_only_ptbxl_is_compared_with_the_study(tmp_path):
    from ecglens.data.summary import summarize_sources

    for name in ("zeta", "alpha"):
        (tmp_path / name).mkdir()
        write_challenge_mat(tmp_path / name, "R1", known_signal(), dx="164889003")
    sources = [parse_source(f"{name}=challenge:{tmp_path / name}") for name in ("zeta", "alpha")]
    summaries, _ = summarize_sources(sources, "seed", workers=1, progress=False)
    assert [s.dataset for s in summaries] == ["zeta", "alpha"]
    # Challenge records (SNOMED codes) are not what the study's Table 1 describes, even under its mapping.
    assert not any(s.comparable_with_study for s in summaries) and "study" not in summaries[0].to_markdown()


@pytest.mark.slow
@pytest.mark.realdata
def test_ptbxl_alone_is_shown_beside_the_studys_table1(shared_data):
    from ecglens.data.summary import summarize_sources
    from ecglens.study import CITATION, table1_percent

    sources = [parse_source(f"cpsc2018:{shared_data / 'cpsc2018'}"), parse_source(f"ptbxl100:{shared_data / 'ptb-xl'}")]
    cpsc, ptbxl = summarize_sources(sources, "seed", workers=2, progress=False)[0]
    assert (cpsc.dataset, ptbxl.dataset) == ("cpsc2018", "ptbxl")
    assert not cpsc.comparable_with_study and "study Table 1" not in cpsc.to_markdown()
    text = ptbxl.to_markdown()
    assert ptbxl.comparable_with_study and "study Table 1 (%)" in text and CITATION in text
    assert table1_percent()["SNR"] == 66.72 and "| 66.72 |" in text


def test_the_summary_command_prints_its_table_as_lines_with_the_gap(shared_data, tmp_path, capsys):
    from ecglens.cli import main

    assert (
        main(
            [
                "data",
                "summary",
                f"cpsc2018:{shared_data / 'cpsc2018'}",
                "--label-profile",
                "broad",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    lines = out.splitlines()  # a Markdown table as lines, not one line of escaped newlines
    assert "\\n" not in out and any(line.startswith("| class | count (%)") for line in lines) and len(lines) > 8
