#!/usr/bin/python3
"""A real RTSP server for tests: serves video files as live, endlessly looping H.264 cameras.

Run with the SYSTEM python (it needs Debian's GStreamer RTSP server bindings, not the venv):

    /usr/bin/python3 tests/helpers/rtsp_server.py --port 8554 --mount cam=vtest.avi \
        [--mount other=clip.mp4] [--user U --password P] [--fps F]

serves rtsp://127.0.0.1:8554/cam. No project imports; stdlib + PyGObject + GStreamer only.

How it loops: at start-up each file is decoded and encoded ONCE to H.264 (x264enc
tune=zerolatency speed-preset=ultrafast: no B-frames; one slice per frame; a key frame every
~1 s and always on the first frame) and the access units are kept in memory (vtest.avi: ~18 MB,
where its raw frames would be ~530 MB; ~1 s of start-up). Each media is then
``appsrc is-live=true format=time ! rtph264pay config-interval=-1`` and a feeder thread pushes
the units round and round at the target fps in real time, stamping each with the pipeline's
running time at push: timestamps only ever grow, the loop seam is an IDR frame with SPS/PPS,
and the server spends almost no CPU while streaming (~1 % of a core for vtest). Media are
shared between clients (one live stream; a client joining late starts at the next key frame);
when the last client leaves, the next one gets a fresh media that starts at frame 0.

Two details keep FFmpeg/PyAV readers clean: frames are single-slice, because rtph264pay with
config-interval=-1 puts SPS/PPS before *every* IDR slice and FFmpeg then splits a multi-slice
IDR frame in two (an extra frame with a repeated pts on every key frame); and x264's SEI and
AUD NALs are dropped (see strip_nals).

With --user/--password every mount requires RTSP basic auth (GstRtspServer.RTSPAuth);
missing or wrong credentials get 401.

After the server listens it prints exactly one line ``READY <port>`` to stdout. SIGTERM or
SIGINT stop it cleanly (exit 0). Diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import faulthandler
import signal
import sys
import threading
import time
from fractions import Fraction

# SIGUSR1 dumps every thread's stack to stderr: the test helper asks for it when this server
# is not ready in time, so a hang says where it hangs
faulthandler.register(signal.SIGUSR1, all_threads=True)

import gi  # noqa: E402

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ROLE = "user"


def log(msg: str) -> None:
    print(f"rtsp_server: {msg}", file=sys.stderr, flush=True)


def strip_nals(au: bytes, drop=(6, 9)) -> bytes:
    """Drop SEI and access-unit-delimiter NALs from an Annex-B access unit.

    x264 puts a big SEI (its settings) in front of the first frame only; on every pass of the
    loop it would come round again and FFmpeg's parser then gives that frame no pts.
    """
    out = []
    for nal in au.split(b"\x00\x00\x01")[1:]:
        nal = nal.rstrip(b"\x00")  # trailing zeros belong to the next 4-byte start code
        if nal and (nal[0] & 0x1F) not in drop:
            out.append(b"\x00\x00\x00\x01" + nal)
    return b"".join(out)


ENCODE_STALL_S = 15.0  # a file normally encodes in a few seconds: longer is a stuck pipeline


class Clip:
    """One file, encoded once: a list of (bytes, is_keyframe) access units plus its geometry."""

    def __init__(self, path: str, fps: Fraction | None) -> None:
        self.path = path
        self.units: list[tuple[bytes, bool]] = []
        self.width = self.height = 0
        self.fps = fps
        self._encode()
        if not self.units:
            raise RuntimeError(f"{path}: no video frames decoded")
        if not self.units[0][1]:
            raise RuntimeError(f"{path}: first encoded frame is not a key frame")

    def _encode(self) -> None:
        pipe = Gst.Pipeline.new("encode")
        src = Gst.ElementFactory.make("filesrc")
        src.set_property("location", self.path)
        dec = Gst.ElementFactory.make("decodebin")
        conv = Gst.ElementFactory.make("videoconvert")
        rawcaps = Gst.ElementFactory.make("capsfilter")
        rawcaps.set_property("caps", Gst.Caps.from_string("video/x-raw,format=I420"))
        enc = Gst.ElementFactory.make("x264enc")  # added once the frame rate is known
        h264caps = Gst.ElementFactory.make("capsfilter")
        h264caps.set_property(
            "caps",
            Gst.Caps.from_string("video/x-h264,stream-format=byte-stream,alignment=au"),
        )
        sink = Gst.ElementFactory.make("appsink")
        sink.set_property("sync", False)
        sink.set_property("emit-signals", False)
        for e in (src, dec, conv, rawcaps, enc, h264caps, sink):
            if e is None:
                raise RuntimeError("missing GStreamer element (need plugins base/good/ugly/libav)")
        for e in (src, dec, conv, rawcaps, h264caps, sink):
            pipe.add(e)
        src.link(dec)
        conv.link(rawcaps)
        h264caps.link(sink)
        state = {"video": False}

        def pad_added(_dec, pad):
            caps = pad.get_current_caps() or pad.query_caps(None)
            name = caps.get_structure(0).get_name() if caps and caps.get_size() else ""
            if name.startswith("video/") and not state["video"]:
                state["video"] = True
                if self.fps is None:  # the file's own rate, from the decoded caps
                    ok, num, den = caps.get_structure(0).get_fraction("framerate")
                    self.fps = Fraction(num, den) if ok and num > 0 and den > 0 else Fraction(25)
                # x264enc takes its settings only while stopped, so it joins the pipeline now
                Gst.util_set_object_arg(enc, "tune", "zerolatency")  # no B-frames, no lookahead
                Gst.util_set_object_arg(enc, "speed-preset", "ultrafast")
                enc.set_property("bframes", 0)
                enc.set_property("aud", False)
                enc.set_property("sliced-threads", False)  # one slice per frame (see Feeder)
                # a key frame about every second (and always on the first frame)
                enc.set_property("key-int-max", max(1, round(float(self.fps))))
                pipe.add(enc)
                rawcaps.link(enc)
                enc.link(h264caps)
                enc.sync_state_with_parent()
                pad.link(conv.get_static_pad("sink"))
            else:  # audio etc.: swallow it
                fake = Gst.ElementFactory.make("fakesink")
                fake.set_property("sync", False)
                fake.set_property("async", False)
                pipe.add(fake)
                fake.sync_state_with_parent()
                pad.link(fake.get_static_pad("sink"))

        dec.connect("pad-added", pad_added)
        pipe.set_state(Gst.State.PLAYING)
        bus = pipe.get_bus()
        last_progress = time.monotonic()
        try:
            while True:
                sample = sink.emit("try-pull-sample", 100 * Gst.MSECOND)
                if sample is None:
                    if sink.get_property("eos"):
                        break
                    if time.monotonic() - last_progress > ENCODE_STALL_S:
                        raise RuntimeError(f"encoding stalled: no frame for {ENCODE_STALL_S:g} s "
                                           f"after {len(self.units)} (pipeline state "
                                           f"{pipe.get_state(0)[1].value_nick})")
                    msg = bus.pop_filtered(Gst.MessageType.ERROR)
                    if msg is not None:
                        err, dbg = msg.parse_error()
                        raise RuntimeError(f"{self.path}: {err.message} ({dbg})")
                    continue
                last_progress = time.monotonic()
                buf = sample.get_buffer()
                if not self.width:
                    s = sample.get_caps().get_structure(0)
                    self.width = s.get_value("width")
                    self.height = s.get_value("height")
                key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
                self.units.append((strip_nals(buf.extract_dup(0, buf.get_size())), key))
        finally:
            pipe.set_state(Gst.State.NULL)


class Feeder(threading.Thread):
    """Pushes a clip's units into one media's appsrc, looped, at fps, in real time."""

    def __init__(self, clip: Clip, appsrc: Gst.Element, name: str) -> None:
        super().__init__(name=f"feed-{name}", daemon=True)
        self.clip = clip
        self.appsrc = appsrc
        self.stop_event = threading.Event()

    def run(self) -> None:
        clip, src = self.clip, self.appsrc
        dur = int(Gst.SECOND / clip.fps)
        n_units = len(clip.units)
        i = 0
        next_pts = None  # running time (pipeline clock) at which unit i goes out
        while not self.stop_event.is_set():
            _, cur, _ = src.get_state(0)
            clock = src.get_clock()
            if cur != Gst.State.PLAYING or clock is None:
                time.sleep(0.01)
                continue
            now = clock.get_time() - src.get_base_time()
            if next_pts is None or now - next_pts > 5 * dur:
                # start, or we fell far behind (machine stalled): resync, timestamps still grow
                next_pts = max(now, next_pts or 0)
            if next_pts > now:
                time.sleep(min(next_pts - now, Gst.SECOND // 10) / Gst.SECOND)
                continue
            data, key = clip.units[i]
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = buf.dts = next_pts
            buf.duration = dur
            if not key:
                buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
            if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
                break  # media torn down (flushing / eos / error)
            i = (i + 1) % n_units  # the loop: frame 0 is an IDR with SPS/PPS
            next_pts += dur


class LoopFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, name: str, clip: Clip) -> None:
        super().__init__()
        self.mount_name = name
        self.clip = clip
        fps = clip.fps
        caps = (
            f"video/x-h264,stream-format=byte-stream,alignment=au,"
            f"width={clip.width},height={clip.height},framerate={fps.numerator}/{fps.denominator}"
        )
        self.set_launch(
            # a stalled pipeline drops the oldest frames (like a camera) instead of queueing forever
            f'( appsrc name=src is-live=true format=time do-timestamp=false block=false '
            f'max-bytes=0 max-buffers=0 max-time={2 * Gst.SECOND} leaky-type=downstream '
            f'caps="{caps}" ! rtph264pay name=pay0 pt=96 config-interval=-1 )'
        )
        self.set_shared(True)
        self.connect("media-configure", self._configure)

    def _configure(self, _factory, media) -> None:
        appsrc = media.get_element().get_by_name_recurse_up("src")
        feeder = Feeder(self.clip, appsrc, self.mount_name)
        media.connect("unprepared", lambda *_: feeder.stop_event.set())
        feeder.start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1 (0 = any free)")
    ap.add_argument("--mount", action="append", required=True, metavar="NAME=FILE")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--fps", type=float, help="play at this rate instead of the file's")
    args = ap.parse_args(argv)
    if (args.user is None) != (args.password is None):
        ap.error("--user and --password go together")

    for sig in (signal.SIGTERM, signal.SIGINT):  # while encoding; the main loop takes over later
        signal.signal(sig, lambda *_: sys.exit(0))
    Gst.init(None)
    fps = Fraction(args.fps).limit_denominator(1001) if args.fps is not None else None
    if fps is not None and fps <= 0:
        ap.error("--fps must be > 0")

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()

    perms = None
    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)  # no default token: anonymous requests get 401
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role(ROLE, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role(ROLE, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)

    for spec in args.mount:
        name, sep, path = spec.partition("=")
        name = name.strip("/")
        if not sep or not name or not path:
            ap.error(f"--mount wants NAME=FILE, got {spec!r}")
        t0 = time.monotonic()
        try:
            clip = Clip(path, fps)
        except Exception as e:  # noqa: BLE001
            log(f"cannot load {path}: {e}")
            return 2
        log(
            f"/{name}: {path} {clip.width}x{clip.height} {len(clip.units)} frames @ "
            f"{float(clip.fps):g} fps, {sum(len(u) for u, _ in clip.units) / 1e6:.1f} MB "
            f"(encoded in {time.monotonic() - t0:.1f} s)"
        )
        factory = LoopFactory(name, clip)
        if perms is not None:
            factory.set_permissions(perms)
        mounts.add_factory("/" + name, factory)

    if server.attach(None) == 0:
        log(f"cannot listen on 127.0.0.1:{args.port}")
        return 1
    port = server.get_bound_port()

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, lambda *_: (loop.quit(), False)[1])
    # drop sessions whose client vanished without TEARDOWN
    GLib.timeout_add_seconds(2, lambda: (server.get_session_pool().cleanup(), True)[1])

    print(f"READY {port}", flush=True)
    loop.run()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
