"""The hub's media library with the real ffprobe/ffmpeg: what it accepts, what it refuses,
the playback format it stores and the loudness it normalises to."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import pytest
from audio_tools import integrated_loudness, make_tone

from thanthien.hub.services.media import (
    PLAYBACK_FORMAT,
    MediaError,
    MediaLibrary,
    MediaSettings,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fixtures")
    for fmt in ("wav", "mp3", "ogg", "m4a", "flac"):
        make_tone(d / f"tone.{fmt}")
    make_tone(d / "loud.wav", gain_db=15)  # lavfi's sine peaks at -18 dBFS: this at -3
    make_tone(d / "quiet.mp3", gain_db=-25, channels=1)
    return d


@pytest.fixture
def library(tmp_path: Path) -> MediaLibrary:
    return MediaLibrary(tmp_path / "media")


def assert_nothing_stored(library: MediaLibrary) -> None:
    assert library.stored() == []
    assert [p for p in library.directory.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("fmt", ["wav", "mp3", "ogg", "m4a"])
def test_accepted_format_is_converted_to_the_playback_format(fixtures: Path, library: MediaLibrary,
                                                              fmt: str):
    record = library.add_file(fixtures / f"tone.{fmt}", f"thong-bao.{fmt}")
    assert record.format == PLAYBACK_FORMAT
    assert record.source_format == {"wav": "WAV", "mp3": "MP3", "ogg": "OGG", "m4a": "M4A"}[fmt]
    assert record.original_name == f"thong-bao.{fmt}"
    with wave.open(str(library.path_for(record.sha256)), "rb") as w:
        assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (2, 1, 22050)
        assert w.getnframes() / w.getframerate() == pytest.approx(record.duration_s, abs=0.001)
    assert record.duration_s == pytest.approx(2.0, abs=0.05)


def test_stored_file_is_named_by_the_sha256_of_its_content(fixtures: Path, library: MediaLibrary):
    record = library.add_file(fixtures / "tone.mp3")
    path = library.path_for(record.sha256)
    assert path == library.directory / record.sha256[:2] / f"{record.sha256}.wav"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == record.sha256
    assert record.size_bytes == len(data)
    assert record.source_sha256 == hashlib.sha256((fixtures / "tone.mp3").read_bytes()).hexdigest()


def test_same_content_is_stored_once_with_the_same_sha256(fixtures: Path, library: MediaLibrary):
    first = library.add_file(fixtures / "tone.ogg", "a.ogg")
    second = library.add_bytes((fixtures / "tone.ogg").read_bytes(), "b.ogg")
    assert second.sha256 == first.sha256
    assert (first.created, second.created) == (True, False)
    assert second.original_name == "b.ogg"
    assert library.stored() == [first.sha256]


@pytest.mark.parametrize("content", [b"\x00\x01garbage" * 4000, "Biên bản họp thôn\n".encode() * 100],
                         ids=["binary", "text"])
def test_file_that_is_not_audio_is_refused_and_nothing_stored(library: MediaLibrary, content: bytes):
    with pytest.raises(MediaError) as err:
        library.add_bytes(content, "bien-ban.mp3")
    assert err.value.code == "not_audio"
    assert "không phải âm thanh" in err.value.message
    assert_nothing_stored(library)


def test_empty_file_is_refused(library: MediaLibrary):
    with pytest.raises(MediaError) as err:
        library.add_bytes(b"", "rong.wav")
    assert err.value.code == "empty"
    assert "rỗng" in err.value.message
    assert_nothing_stored(library)


def test_wav_without_samples_is_refused_as_empty(library: MediaLibrary, tmp_path: Path):
    path = tmp_path / "header-only.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
    with pytest.raises(MediaError) as err:
        library.add_file(path)
    assert err.value.code == "empty"
    assert_nothing_stored(library)


def test_silent_file_is_refused(library: MediaLibrary, tmp_path: Path):
    path = make_tone(tmp_path / "silence.wav", gain_db=-200)
    with pytest.raises(MediaError) as err:
        library.add_file(path)
    assert err.value.code == "silent"
    assert "im lặng" in err.value.message
    assert_nothing_stored(library)


def test_too_long_file_is_refused(fixtures: Path, tmp_path: Path):
    library = MediaLibrary(tmp_path / "media", MediaSettings(max_duration_s=1.5))
    with pytest.raises(MediaError) as err:
        library.add_file(fixtures / "tone.m4a")
    assert err.value.code == "too_long"
    assert "quá dài" in err.value.message and "2 giây, tối đa 1,5 giây" in err.value.message
    assert_nothing_stored(library)


def test_too_big_file_is_refused_before_probing(fixtures: Path, tmp_path: Path):
    library = MediaLibrary(tmp_path / "media", MediaSettings(max_bytes=4096))
    with pytest.raises(MediaError) as err:
        library.add_bytes((fixtures / "tone.wav").read_bytes(), "lon.wav")
    assert err.value.code == "too_big"
    assert "quá lớn" in err.value.message
    assert_nothing_stored(library)


def test_audio_in_another_format_is_refused(fixtures: Path, library: MediaLibrary):
    with pytest.raises(MediaError) as err:
        library.add_file(fixtures / "tone.flac")
    assert err.value.code == "unsupported_format"
    assert "WAV, MP3, OGG hoặc M4A" in err.value.message
    assert_nothing_stored(library)


def test_video_file_is_refused(library: MediaLibrary, tmp_path: Path):
    import subprocess

    path = tmp_path / "clip.m4a"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=1:size=64x48:rate=5", "-f", "lavfi", "-i", "sine=duration=1",
                    "-c:v", "mpeg4", "-c:a", "aac", "-f", "mp4", str(path)], check=True, timeout=30)
    with pytest.raises(MediaError) as err:
        library.add_file(path)
    assert err.value.code == "not_audio"
    assert "video" in err.value.message
    assert_nothing_stored(library)


@pytest.mark.parametrize("name", ["loud.wav", "quiet.mp3"])
def test_loudness_is_normalised_to_the_target(fixtures: Path, library: MediaLibrary, name: str):
    before = integrated_loudness(fixtures / name)
    record = library.add_file(fixtures / name)
    after = integrated_loudness(library.path_for(record.sha256))
    assert abs(before - library.settings.target_lufs) > 5  # the fixture really was off target
    assert after == pytest.approx(library.settings.target_lufs, abs=1.0)


def test_loudness_target_is_configurable(fixtures: Path, tmp_path: Path):
    library = MediaLibrary(tmp_path / "media", MediaSettings(target_lufs=-18.0))
    record = library.add_file(fixtures / "tone.ogg")
    assert integrated_loudness(library.path_for(record.sha256)) == pytest.approx(-18.0, abs=1.0)


def test_a_bad_sha256_is_not_a_path(library: MediaLibrary):
    with pytest.raises(ValueError, match="not a sha256"):
        library.path_for("../../etc/passwd")


def test_a_tool_that_takes_too_long_is_stopped_and_nothing_stored(fixtures: Path, tmp_path: Path):
    library = MediaLibrary(tmp_path / "media", MediaSettings(probe_timeout_s=0.001))
    with pytest.raises(MediaError) as err:
        library.add_file(fixtures / "tone.mp3")
    assert err.value.code == "timeout"
    assert "quá lâu" in err.value.message
    assert_nothing_stored(library)


def test_stored_file_is_playable_by_the_edge_audio_seam(fixtures: Path, library: MediaLibrary):
    from thanthien.edge.audio import AudioClip

    record = library.add_file(fixtures / "tone.m4a")
    clip = AudioClip.from_wav(library.path_for(record.sha256))
    assert (clip.sample_rate, clip.channels) == (22050, 1)
    assert clip.duration_s == pytest.approx(record.duration_s, abs=0.001)
