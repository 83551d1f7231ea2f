"""RTP packets of a JPEG picture (RFC 2435, payload type 26), as a camera streams them.

Only what the simulator's own pictures need: baseline JPEG with the standard Huffman
tables, 4:2:0 or 4:2:2 sampling, no restart markers, two 8-bit quantisation tables sent
in-band (Q = 255; an encoder's single table serves as both).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PAYLOAD_TYPE = 26
CLOCK_RATE = 90000
MAX_FRAGMENT = 1400


@dataclass(frozen=True)
class JpegParts:
    width: int
    height: int
    rtp_type: int
    """0 for 4:2:2, 1 for 4:2:0 (RFC 2435 section 4.1)."""
    qtables: bytes
    scan: bytes


def split_jpeg(jpeg: bytes) -> JpegParts:
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    tables: dict[int, bytes] = {}
    width = height = rtp_type = -1
    i = 2
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            raise ValueError(f"bad marker at {i}")
        marker = jpeg[i + 1]
        length = struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        segment = jpeg[i + 4:i + 2 + length]
        if marker == 0xDB:  # DQT: one or more tables
            j = 0
            while j < len(segment):
                pq_tq = segment[j]
                if pq_tq >> 4:
                    raise ValueError("16-bit quantisation tables are not supported")
                tables[pq_tq & 0x0F] = segment[j + 1:j + 65]
                j += 65
        elif marker == 0xC0:  # SOF0
            height, width = struct.unpack(">HH", segment[1:5])
            sampling = segment[7]  # first component's H/V factors
            rtp_type = {0x21: 0, 0x22: 1}.get(sampling, -1)
            if rtp_type < 0:
                raise ValueError(f"unsupported sampling {sampling:#x}")
        elif marker == 0xDD:
            raise ValueError("restart markers are not supported")
        elif marker == 0xDA:  # SOS: entropy-coded data follows until EOI
            end = jpeg.rfind(b"\xff\xd9")
            scan = jpeg[i + 2 + length:end]
            if width % 8 or height % 8 or 0 not in tables:
                raise ValueError("picture must be a multiple of 8 pixels with a quantisation table")
            # luma and chroma tables; an encoder that used one table for all gets it twice
            return JpegParts(width, height, rtp_type, tables[0] + tables.get(1, tables[0]), scan)
        i += 2 + length
    raise ValueError("no scan in JPEG")


def packets(jpeg: bytes, seq: int, timestamp: int, ssrc: int) -> list[bytes]:
    """The RTP packets of one picture, starting at sequence number ``seq``."""
    parts = split_jpeg(jpeg)
    out = []
    offset = 0
    while offset < len(parts.scan):
        chunk = parts.scan[offset:offset + MAX_FRAGMENT]
        last = offset + len(chunk) >= len(parts.scan)
        header = struct.pack(">BBHII", 0x80, (0x80 if last else 0) | PAYLOAD_TYPE, (seq + len(out)) & 0xFFFF,
                             timestamp & 0xFFFFFFFF, ssrc)
        jpeg_header = struct.pack(">I", offset & 0xFFFFFF) + bytes(
            [parts.rtp_type, 255, parts.width // 8, parts.height // 8])
        if offset == 0:
            jpeg_header += struct.pack(">BBH", 0, 0, len(parts.qtables)) + parts.qtables
        out.append(header + jpeg_header + chunk)
        offset += len(chunk)
    return out


def interleaved(channel: int, packet: bytes) -> bytes:
    """An RTP packet framed for RTSP over TCP (RFC 2326 section 10.12)."""
    return struct.pack(">cBH", b"$", channel, len(packet)) + packet
