"""The speaker's media cache against a real HTTP server on loopback."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from speaker_support import TOKEN, media_server, wav_and_sha

from thanthien.edge.speaker.media_cache import MediaCache, MediaCorrupt, MediaFetchError
from thanthien.edge.speaker.prefetch import Prefetcher, Want

pytestmark = pytest.mark.timeout(30)


def test_fetch_stores_the_verified_file_under_its_sha256(tmp_path: Path):
    data, sha = wav_and_sha(0.2)
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = data
        cache = MediaCache(tmp_path / "cache", base_url=hub.base_url, token=TOKEN)
        path = cache.fetch(sha, f"media/{sha}")
    assert path == tmp_path / "cache" / sha[:2] / f"{sha}.wav"
    assert path.read_bytes() == data
    assert hub.requests == [(f"/api/media/{sha}", f"Bearer {TOKEN}")]
    assert cache.cached() == [sha]


def test_cached_file_is_not_fetched_again(tmp_path: Path):
    data, sha = wav_and_sha(0.2)
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = data
        cache = MediaCache(tmp_path, base_url=hub.base_url, token=TOKEN)
        cache.fetch(sha)
        cache.fetch(sha)
    assert len(hub.requests) == 1


def test_wrong_token_is_refused_and_nothing_cached(tmp_path: Path):
    data, sha = wav_and_sha(0.2)
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = data
        cache = MediaCache(tmp_path, base_url=hub.base_url, token="stolen-or-stale")
        with pytest.raises(MediaFetchError) as err:
            cache.fetch(sha)
    assert "token" in err.value.reason and "401" in err.value.reason
    assert err.value.retry is False
    assert cache.cached() == []
    assert list((tmp_path / ".partial").iterdir()) == []


def test_hash_mismatch_is_refused_and_nothing_cached(tmp_path: Path):
    _, sha = wav_and_sha(0.2)
    other, _ = wav_and_sha(0.2, freq=880)
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = other
        cache = MediaCache(tmp_path, base_url=hub.base_url, token=TOKEN)
        with pytest.raises(MediaFetchError, match="hash mismatch"):
            cache.fetch(sha)
    assert cache.cached() == []
    assert not cache.has(sha)
    assert list((tmp_path / ".partial").iterdir()) == []


def test_token_is_not_sent_to_another_host(tmp_path: Path):
    data, sha = wav_and_sha(0.2)
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = data
        cache = MediaCache(tmp_path, base_url=hub.base_url, token=TOKEN)
        with pytest.raises(MediaFetchError, match="not on the hub"):
            cache.fetch(sha, f"http://localhost:{hub.port}/api/media/{sha}")
    assert hub.requests == []


def test_unreachable_hub_is_a_retryable_error(tmp_path: Path):
    with media_server() as hub:
        base = hub.base_url
    _, sha = wav_and_sha(0.2)
    cache = MediaCache(tmp_path, base_url=base, token=TOKEN, timeout_s=2)
    with pytest.raises(MediaFetchError, match="cannot reach") as err:
        cache.fetch(sha)
    assert err.value.retry is True


def test_evict_keeps_only_what_is_referenced(tmp_path: Path):
    cache = MediaCache(tmp_path)
    keep = cache.put(wav_and_sha(0.1, 440)[0])
    drop = cache.put(wav_and_sha(0.1, 660)[0])
    assert cache.evict({keep}) == [drop]
    assert cache.cached() == [keep]


def test_corrupt_cached_file_is_deleted_when_loaded(tmp_path: Path):
    cache = MediaCache(tmp_path)
    sha = cache.put(wav_and_sha(0.1)[0])
    path = cache.path_for(sha)
    path.write_bytes(path.read_bytes()[:-10] + bytes(10))
    with pytest.raises(MediaCorrupt):
        cache.load(sha)
    assert not cache.has(sha)


def test_loaded_clip_is_the_cached_audio(tmp_path: Path):
    cache = MediaCache(tmp_path)
    sha = cache.put(wav_and_sha(0.25)[0])
    clip = cache.load(sha)
    assert (clip.sample_rate, clip.channels) == (8000, 1)
    assert clip.duration_s == pytest.approx(0.25)


def test_prefetcher_retries_until_the_hub_answers(tmp_path: Path):
    data, sha = wav_and_sha(0.2)
    ready = threading.Event()
    with media_server() as hub:
        hub.files[f"/api/media/{sha}"] = data
        hub.fail_next = 2  # the hub is busy twice, then answers
        cache = MediaCache(tmp_path, base_url=hub.base_url, token=TOKEN)
        fetcher = Prefetcher(cache, on_ready=lambda s: ready.set(), retry_min_s=0.05, retry_max_s=0.2)
        fetcher.start()
        try:
            fetcher.want([Want(sha, f"media/{sha}", 0.0)])
            assert ready.wait(5)
        finally:
            fetcher.close()
    assert cache.has(sha)
    assert len(hub.requests) == 3


def test_prefetcher_fetches_the_earliest_needed_first(tmp_path: Path):
    later, sha_later = wav_and_sha(0.1, 440)
    sooner, sha_sooner = wav_and_sha(0.1, 660)
    done = threading.Event()
    got: list[str] = []

    def on_ready(sha: str) -> None:
        got.append(sha)
        if len(got) == 2:
            done.set()

    with media_server() as hub:
        hub.files.update({f"/api/media/{sha_later}": later, f"/api/media/{sha_sooner}": sooner})
        cache = MediaCache(tmp_path, base_url=hub.base_url, token=TOKEN)
        fetcher = Prefetcher(cache, on_ready=on_ready)
        fetcher.want([Want(sha_later, None, 2000.0), Want(sha_sooner, None, 1000.0)])
        fetcher.start()
        try:
            assert done.wait(5)
        finally:
            fetcher.close()
    assert got == [sha_sooner, sha_later]
