from conftest import known_signal, write_challenge_mat
from ecglens.cache import EcgCache, build_cache
from ecglens.io import parse_source
from ecglens.summary import summarize_index, write_summaries


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
