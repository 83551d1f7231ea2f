"""A real RTSP server the project did not write: GStreamer's gst-rtsp-server with videotestsrc
scenes, H.264 (x264) over RTP, for the camera checker's tests (see ``gst_camera.py``).

Run with Debian's ``/usr/bin/python3`` (``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``,
``gstreamer1.0-plugins-{base,good,ugly}``, ``gstreamer1.0-x`` for clockoverlay): the project's
venv cannot import PyGObject. It binds a free loopback port, prints ``READY <port>`` on stdout
once it serves, and runs until stdin closes (its parent died or is done) or SIGTERM. Without
a package it needs it prints ``MISSING <what>`` and exits with status 3.

Each scene is one mount, ``rtsp://127.0.0.1:<port>/<scene>``. Every client gets its own
pipeline that starts with a key frame, so a one-frame grab decodes at once; moving patterns
follow the wall clock (``animation-mode=wall-time``), so two grabs seconds apart see the
scene where it has moved to, as with a camera that runs all the time.
"""

from __future__ import annotations

import signal
import sys
import threading

MISSING = 3
ELEMENTS = {"videotestsrc": "gstreamer1.0-plugins-base", "videoconvert": "gstreamer1.0-plugins-base",
            "videobalance": "gstreamer1.0-plugins-good", "clockoverlay": "gstreamer1.0-x",
            "x264enc": "gstreamer1.0-plugins-ugly", "rtph264pay": "gstreamer1.0-plugins-good"}
"""Element -> the Debian package that has it."""

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
except (ImportError, ValueError) as exc:
    print(f"MISSING python3-gi and gir1.2-gst-rtsp-server-1.0 ({exc})", flush=True)
    sys.exit(MISSING)

SIZE = "width=640,height=360,framerate=10/1"
CLOCK = ('clockoverlay time-format="%d-%m-%Y %H:%M:%S" font-desc="Sans 16" '
         "halignment=left valignment=top")
"""A camera's on-screen date and time (white, outlined), top left as installers leave it."""
NIGHT = "videobalance brightness=-0.12 contrast=0.3 saturation=0.3"
"""Little light: the colour bars dimmed to a dark, low-contrast picture."""

SCENES: dict[str, tuple[str, str]] = {
    # scene -> (videotestsrc properties, filters after it)
    # a lit still scene, and the same with the camera's running clock
    "still": ("pattern=smpte100", ""),
    "still-clock": ("pattern=smpte100", CLOCK),
    # an office at night: a dim still scene, without and with the clock
    "night": ("pattern=smpte100", NIGHT),
    "night-clock": ("pattern=smpte100", f"{NIGHT} ! {CLOCK}"),
    # a dark scene with one small bright object moving (a 20-pixel-radius ball on black)
    "dark-moving": ("pattern=ball animation-mode=wall-time", ""),
    # a lit moving scene
    "moving": ("pattern=ball animation-mode=wall-time background-color=0xff606060", ""),
    # black, a uniform grey ("no signal") and black with only the camera's clock on it
    "black": ("pattern=black", ""),
    "grey": ("pattern=solid-color foreground-color=0xff808080", ""),
    "black-clock": ("pattern=black", CLOCK),
}

ENCODE = ("x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=800 ! "
          "rtph264pay name=pay0 pt=96 config-interval=1")


def launch(scene: str) -> str:
    source, filters = SCENES[scene]
    chain = [f"videotestsrc is-live=true {source}", f"video/x-raw,{SIZE}", "videoconvert"]
    chain += [filters] if filters else []
    chain += ["videoconvert", "video/x-raw,format=I420", ENCODE]
    return "( " + " ! ".join(chain) + " )"


def main() -> int:
    Gst.init(None)
    absent = sorted({pkg for element, pkg in ELEMENTS.items() if Gst.ElementFactory.find(element) is None})
    if absent:
        print(f"MISSING {' '.join(absent)}", flush=True)
        return MISSING
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")
    mounts = server.get_mount_points()
    for scene in SCENES:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch(scene))
        factory.set_shared(False)
        mounts.add_factory(f"/{scene}", factory)
    if server.attach(None) == 0:
        print("ERROR could not attach the RTSP server", flush=True)
        return 1
    GLib.timeout_add_seconds(2, _cleanup, server)
    signal.signal(signal.SIGTERM, lambda *_: GLib.idle_add(loop.quit))

    def watch_stdin() -> None:
        sys.stdin.read()  # returns when the parent closes the pipe or dies
        GLib.idle_add(loop.quit)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


def _cleanup(server: GstRtspServer.RTSPServer) -> bool:
    """Ends the sessions of clients that left without TEARDOWN (ffmpeg killed after a frame)."""
    pool = server.get_session_pool()
    pool.cleanup()
    return True


if __name__ == "__main__":
    sys.exit(main())
