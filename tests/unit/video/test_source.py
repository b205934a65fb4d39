"""Video file source: real footage, timing, stride, and every kind of bad input."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from cctv_id.errors import InputError, VideoError
from cctv_id.types import Frame
from cctv_id.video.source import file_sha256, open_video, video_info

av = pytest.importorskip("av")


def _write_clip(path: Path, n: int = 40, codec: str = "mpeg4", size=(160, 120), fps=10, meta=None):
    """A short synthetic clip written with PyAV (moving square over noise)."""
    w, h = size
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        if meta:
            c.metadata.update(meta)
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            img[10 + i % 50 : 40 + i % 50, 20:50] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def mp4_clip(tmp_path_factory) -> Path:
    return _write_clip(
        tmp_path_factory.mktemp("clip") / "clip.mp4",
        n=60,
        codec="libx264",
        meta={"creation_time": "2024-05-01T12:00:00.000000Z"},
    )


# --- real footage ---------------------------------------------------------------------------


def test_vtest_frames_and_timing(vtest_path):
    with open_video(vtest_path, camera="street") as src:
        assert src.fps == pytest.approx(10.0)
        assert (src.width, src.height) == (768, 576)
        assert src.codec == "msmpeg4"
        assert src.frame_count == 795
        assert src.duration_s == pytest.approx(79.5, abs=0.2)
        assert src.start_time is None
        frames = list(src)
        assert src.decode_errors == 0 and src.pts_fixes == 0 and not src.incomplete
    assert len(frames) == 795
    assert [f.index for f in frames] == list(range(795))
    pts = np.array([f.pts_s for f in frames])
    assert pts[0] == 0.0 and np.all(np.diff(pts) > 0)
    assert pts[-1] == pytest.approx(79.4)
    f = frames[100]
    assert isinstance(f, Frame) and f.image.dtype == np.uint8 and f.image.shape == (576, 768, 3)
    assert f.source == "street" and f.wall_time is None


def test_vtest_stride_and_wall_time(vtest_path):
    t0 = datetime(2024, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=1)))
    with open_video(vtest_path, stride=5, start_time=t0) as src:
        frames = list(src)
        assert src.frames_decoded == 795
    assert [f.index for f in frames] == list(range(0, 795, 5))
    for f in frames[:20]:
        assert f.pts_s == pytest.approx(f.index / 10.0)
        assert f.wall_time.tzinfo == timezone.utc
        assert f.wall_time == t0 + timedelta(seconds=f.pts_s)
    assert frames[1].wall_time - frames[0].wall_time == timedelta(seconds=0.5)


def test_vtest_stride_images_match_full_decode(vtest_path):
    with open_video(vtest_path) as src:
        full = {f.index: f.image for f, _ in zip(src, range(31))}
    with open_video(vtest_path, stride=10) as src:
        strided = [f for f, _ in zip(src, range(4))]
    for f in strided:
        assert np.array_equal(f.image, full[f.index])


def test_sha256_and_info(vtest_path):
    expected = hashlib.sha256(vtest_path.read_bytes()).hexdigest()
    assert file_sha256(vtest_path) == expected
    with open_video(vtest_path) as src:
        assert src.sha256 == expected
        assert src.path == Path(vtest_path)
    info = video_info(vtest_path)
    assert info["fps"] == 10.0 and info["frame_count"] == 795 and info["width"] == 768


def test_megamind_bugy_is_decoded_with_timestamps_repaired(damaged_video_path):
    """Pinned: the damaged AVI (packed-bitstream XviD, B-frames) decodes all 270 frames with no
    decoder error, but the container labels the frames with shuffled timestamps (1, 2, 3, 5, 4,
    6, 8, 7, ...). The images come out in display order; the source re-sorts the labels so
    pts_s is monotonic and counts the repairs."""
    with open_video(damaged_video_path) as src:
        assert (src.width, src.height, src.codec) == (720, 528, "mpeg4")
        assert src.fps == pytest.approx(30.0)
        frames = list(src)
        assert src.decode_errors == 0
        assert src.pts_fixes > 50
        assert not src.incomplete
    assert len(frames) == 270
    pts = np.array([f.pts_s for f in frames])
    assert np.allclose(pts, np.arange(270) / 30.0)
    assert frames[0].image.max() == 0  # the first (key) frame is black in this file
    assert frames[1].image.mean() > 20


def test_progress_bar(vtest_path, capsys):
    with open_video(vtest_path, stride=100, progress=True) as src:
        n = sum(1 for _ in src)
    assert n == 8
    assert src._bar is not None and src._bar.n == 795


def test_close_stops_iteration(vtest_path):
    src = open_video(vtest_path)
    next(src)
    src.close()
    assert list(src) == []
    src.close()  # idempotent


# --- written clips --------------------------------------------------------------------------


def test_mp4_creation_time_gives_wall_time(mp4_clip):
    with open_video(mp4_clip) as src:
        assert src.start_time == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
        frames = list(src)
        assert src.codec == "h264"
    assert len(frames) == 60
    assert frames[30].wall_time == datetime(2024, 5, 1, 12, 0, 3, tzinfo=timezone.utc)
    # an explicit start_time wins over the metadata
    t0 = datetime(2020, 1, 1, tzinfo=timezone.utc)
    with open_video(mp4_clip, start_time=t0) as src:
        assert next(src).wall_time == t0


def test_bad_stride(mp4_clip):
    with pytest.raises(ValueError):
        open_video(mp4_clip, stride=0)


# --- bad inputs: one readable line each -------------------------------------------------------


def _one_line(exc: BaseException, path: Path, *words: str) -> None:
    msg = str(exc)
    assert "\n" not in msg
    assert str(path) in msg
    for w in words:
        assert w in msg.lower(), msg


def test_missing_file(tmp_path):
    p = tmp_path / "nope.mp4"
    with pytest.raises(VideoError) as ei:
        open_video(p)
    _one_line(ei.value, p, "no such file")
    assert isinstance(ei.value, InputError)


def test_directory(tmp_path):
    with pytest.raises(VideoError) as ei:
        open_video(tmp_path)
    _one_line(ei.value, tmp_path, "directory")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(VideoError) as ei:
        open_video(p)
    _one_line(ei.value, p, "empty")


def test_text_file_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is a shopping list, not a video\n" * 20)
    with pytest.raises(VideoError) as ei:
        open_video(p)
    _one_line(ei.value, p, "not a video")


def test_random_bytes(tmp_path):
    p = tmp_path / "noise.avi"
    p.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError) as ei:
        open_video(p)
    _one_line(ei.value, p, "not a video")


def test_audio_only_file(tmp_path):
    p = tmp_path / "sound.wav"
    with av.open(str(p), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        s.layout = "mono"
        silence = np.zeros((1, 800), np.int16)
        frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
        frame.sample_rate = 8000
        for pk in s.encode(frame):
            c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    with pytest.raises(VideoError) as ei:
        open_video(p)
    _one_line(ei.value, p, "no video stream")


def test_truncated_mp4_cannot_open(mp4_clip, tmp_path):
    data = mp4_clip.read_bytes()
    assert data.find(b"moov") > len(data) // 2  # libav writes the index at the end
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError) as ei:
        open_video(p)
    _one_line(ei.value, p, "cannot open", "truncated")


def test_truncated_avi_yields_the_frames_it_has(tmp_path):
    full = _write_clip(tmp_path / "full.avi", n=60)
    data = full.read_bytes()
    p = tmp_path / "cut.avi"
    p.write_bytes(data[: len(data) // 2])
    with open_video(p) as src:
        frames = list(src)
        assert 10 < len(frames) < 60
        assert src.incomplete


def test_corrupt_packet_is_skipped_and_counted(mp4_clip, tmp_path):
    data = bytearray(mp4_clip.read_bytes())
    start = data.find(b"mdat") + len(data) // 3
    data[start : start + 20000] = bytes(20000)
    p = tmp_path / "hole.mp4"
    p.write_bytes(bytes(data))
    with open_video(p) as src:
        frames = list(src)
        assert src.decode_errors >= 1
        assert not src.incomplete
    assert 50 <= len(frames) < 60
    assert np.all(np.diff([f.pts_s for f in frames]) > 0)


def test_unrecoverable_damage_raises_after_good_frames(mp4_clip, tmp_path):
    data = bytearray(mp4_clip.read_bytes())
    half, moov = len(data) // 2, data.find(b"moov") - 8
    data[half:moov] = bytes(moov - half)  # everything after the middle is zeros
    p = tmp_path / "dead_half.mp4"
    p.write_bytes(bytes(data))
    got = []
    with open_video(p, max_consecutive_errors=10) as src:
        with pytest.raises(VideoError) as ei:
            for f in src:
                got.append(f)
    assert 15 < len(got) < 40
    assert [f.index for f in got] == list(range(len(got)))
    _one_line(ei.value, p, f"decoding failed at frame {len(got)}", "could not be decoded")
    # with the default tolerance the tail is skipped and the source is marked incomplete
    with open_video(p) as src:
        assert len(list(src)) == len(got)
        assert src.incomplete and src.decode_errors > 10


def test_read_error_mid_stream_raises_video_error(mp4_clip):
    """An I/O error from the demuxer is not an av exception escaping: it is a VideoError,
    raised after the frames decoded before it."""

    class FailingContainer:
        def __init__(self, inner):
            self.inner = inner

        def demux(self, stream):
            for i, pkt in enumerate(self.inner.demux(stream)):
                if i == 20:
                    raise av.error.OSError(5, "Input/output error")
                yield pkt

        def close(self):
            self.inner.close()

    src = open_video(mp4_clip)
    src._container = FailingContainer(src._container)
    got = []
    with src, pytest.raises(VideoError) as ei:
        for f in src:
            got.append(f)
    assert len(got) >= 10
    _one_line(ei.value, mp4_clip, "decoding failed at frame", "input/output error")


def test_frames_convert_to_bgr_only_when_asked_and_carry_their_luma(mp4_clip):
    """The reader defers the BGR conversion to first access (same pixels as converting at
    once) and hands over the decoder's Y plane: limited range for this H.264 clip, and once
    stretched to 0..255 within a few grey levels of the grey of the BGR image."""
    import cv2

    with open_video(mp4_clip) as src:
        frames = list(src)
    assert frames and not any(f.converted for f in frames)
    f = frames[30]
    assert (f.height, f.width) == (120, 160) and not f.converted
    assert f.luma.shape == (120, 160) and f.luma.dtype == np.uint8 and f.grey_limited
    with av.open(str(mp4_clip)) as c:
        direct = [fr.to_ndarray(format="bgr24") for fr in c.decode(video=0)][30]
    assert np.array_equal(f.image, direct) and f.converted
    stretched = (f.luma.astype(np.float32) - 16.0) * 255.0 / 219.0
    grey = cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    assert float(np.abs(np.clip(stretched, 0, 255) - grey).mean()) < 3.0


def test_a_frame_needs_pixels():
    with pytest.raises(ValueError):
        Frame(0, 0.0)
