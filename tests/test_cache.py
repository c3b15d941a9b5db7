import numpy as np
import pytest

from conftest import known_signal, write_challenge_mat
from ecglens.data.cache import CacheError, CacheSpec, EcgCache, build_cache
from ecglens.io import parse_source, read_wfdb
from ecglens.preprocess import resample


@pytest.fixture
def corpus(tmp_path):
    directory = tmp_path / "data"
    directory.mkdir()
    dx = ["164889003", "59118001", "426783006", "164884008,429622005", "999999"]
    for i in range(11):
        write_challenge_mat(directory, f"R{i:03d}", known_signal(1000 + 37 * i, seed=i), dx=dx[i % len(dx)])
    (directory / "broken.hea").write_text("broken 12 500\n")
    return directory


def _build(corpus, out, **kw):
    return build_cache([parse_source(f"challenge:{corpus}")], out, 250, workers=1, shard_size=4, progress=False, **kw)


def test_cache_values_equal_the_reader_after_resampling(corpus, tmp_path):
    report = _build(corpus, tmp_path / "cache")
    assert (report.n_records, report.n_issues) == (11, 1)
    cache = EcgCache(tmp_path / "cache")
    assert len(cache) == 11 and cache.sampling_rate_hz == 250
    for i, record_id in enumerate(cache.index["record_id"]):
        expected = resample(read_wfdb(corpus / f"{record_id}.hea").signal, 500, 250)
        np.testing.assert_array_equal(cache.signal(i), expected)
        assert isinstance(cache.signals, np.memmap)
    labels = cache.labels()
    assert labels.shape == (11, 9)
    assert cache.index.loc[cache.index.record_id == "R003", "classes"].item() == "PVC;STD"
    assert not cache.labels()[4].any() and cache.index.exclusion[4].startswith("out of scope")
    assert cache.labelled()[4]  # out of scope: a negative for every class, not unlabelled
    assert "broken.hea" in cache.issues()[0].path


def test_interrupted_build_resumes_to_the_same_cache(corpus, tmp_path):
    clean = tmp_path / "clean"
    _build(corpus, clean)

    class Interrupt(Exception):
        pass

    def stop_after_second(shard_id):
        if shard_id == 1:
            raise Interrupt

    resumed = tmp_path / "resumed"
    with pytest.raises(Interrupt):
        _build(corpus, resumed, on_shard=stop_after_second)
    with pytest.raises(CacheError, match="unfinished build"):
        EcgCache(resumed)
    report = _build(corpus, resumed)
    assert (report.n_shards_reused, report.n_shards_built) == (2, 1)
    a, b = EcgCache(clean), EcgCache(resumed)
    assert (clean / "signals.f32").read_bytes() == (resumed / "signals.f32").read_bytes()
    cols = [c for c in a.index.columns if c != "source_path"]
    assert a.index[cols].equals(b.index[cols])
    assert _build(corpus, resumed).already_complete


def test_other_spec_is_refused(corpus, tmp_path):
    _build(corpus, tmp_path / "cache")
    with pytest.raises(CacheError, match="another spec"):
        EcgCache(tmp_path / "cache", expect_spec=CacheSpec(sampling_rate_hz=500))
    with pytest.raises(CacheError, match="another spec or sources"):
        build_cache([parse_source(f"challenge:{corpus}")], tmp_path / "cache", 100, progress=False)


def test_damaged_signal_file_is_detected(corpus, tmp_path):
    _build(corpus, tmp_path / "cache")
    path = tmp_path / "cache" / "signals.f32"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(CacheError, match="bytes"):
        EcgCache(tmp_path / "cache")
