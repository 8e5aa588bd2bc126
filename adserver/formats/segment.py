"""Segment files of length-prefixed msgpack records with a CRC32 each.

A record on disk: 4 bytes little-endian payload length, 4 bytes little-endian CRC32 of the
payload, then the payload (one msgpack value). A segment is named
`<stream>-<first sequence number:012d>.seg`; a writer rotates to a new segment past a size or
an age. A reader stops at the first record whose length runs past the end of the file or
whose CRC does not match: a torn tail is detected and never misread.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

from msgspec import msgpack

HEADER = struct.Struct("<II")
MAX_RECORD = 16 << 20


class SegmentWriter:
    """Appends records for one stream of one worker; `flush(fsync)` makes them durable.
    `append` and `take` belong to the event loop's thread; `write` may run in another
    (one at a time: a lock keeps a shutdown's final flush after a write in flight)."""

    def __init__(
        self, directory: str, stream: str, max_bytes: int = 64 << 20, max_age_s: float = 3600.0
    ):
        os.makedirs(directory, exist_ok=True)
        self.directory, self.stream = directory, stream
        self.max_bytes, self.max_age_s = max_bytes, max_age_s
        self.encoder = msgpack.Encoder()
        self.buffer = bytearray()
        self.sequence = 0
        self.file: Any = None
        self.size = 0
        self.opened = 0.0
        self._lock = threading.Lock()
        self._open_next()

    def _open_next(self) -> None:
        if self.file is not None:
            self.file.close()
        existing = sorted(
            n
            for n in os.listdir(self.directory)
            if n.startswith(self.stream + "-") and n.endswith(".seg")
        )
        number = int(existing[-1][len(self.stream) + 1 : -4]) + 1 if existing else 0
        self.path = os.path.join(self.directory, f"{self.stream}-{number:012d}.seg")
        self.file = open(self.path, "ab", buffering=0)
        self.size = self.file.tell()
        self.opened = time.monotonic()
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, record: Any) -> None:
        """Queue a record (written at the next flush)."""
        payload = self.encoder.encode(record)
        self.buffer += HEADER.pack(len(payload), zlib.crc32(payload))
        self.buffer += payload

    def take(self) -> bytes:
        """The queued records' bytes, leaving the queue empty (for a write in another thread)."""
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def write(self, data: bytes, fsync: bool) -> int:
        """Write bytes taken from the queue, rotating first when the segment is full or old."""
        if not data:
            return 0
        with self._lock:
            if self.size >= self.max_bytes or time.monotonic() - self.opened > self.max_age_s:
                self._open_next()
            self.file.write(data)
            self.size += len(data)
            if fsync:
                os.fsync(self.file.fileno())
        return len(data)

    def flush(self, fsync: bool = False) -> int:
        """Write queued records (and fsync when asked); returns the bytes written."""
        return self.write(self.take(), fsync)

    def close(self) -> None:
        self.flush(fsync=True)
        with self._lock:
            self.file.close()


def read_records(path: str, offset: int = 0, raw: bool = False) -> Iterator[tuple[int, Any]]:
    """(offset after the record, record) for each whole, intact record from `offset`; with
    `raw`, the record's msgpack bytes (undecoded: the caller decides what a bad one costs)."""
    with open(path, "rb") as src:
        src.seek(offset)
        data = src.read()
    pos = 0
    while pos + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, pos)
        end = pos + HEADER.size + length
        if length > MAX_RECORD or end > len(data):
            return
        payload = data[pos + HEADER.size : end]
        if zlib.crc32(payload) != crc:
            return
        yield offset + end, payload if raw else msgpack.decode(payload)
        pos = end


def prune(
    root: str, offsets: dict[tuple[str, str], tuple[str, int]], keep_s: float, now: float
) -> list[str]:
    """Delete event segments the aggregator has read to the end (its offset is in a later
    segment of the same worker and stream) that were last written more than `keep_s` ago
    (training and evaluations read the decision logs of recent days). Returns the paths
    deleted."""
    gone: list[str] = []
    if not os.path.isdir(root):
        return gone
    for worker in sorted(os.listdir(root)):
        d = os.path.join(root, worker)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".seg") or "-" not in name:
                continue
            stream = name.rsplit("-", 1)[0]
            reading = offsets.get((worker, stream))
            path = os.path.join(d, name)
            if reading is None or name >= reading[0]:
                continue  # not yet read to its end
            try:
                if now - os.path.getmtime(path) > keep_s:
                    os.remove(path)
                    gone.append(path)
            except FileNotFoundError:
                continue
    return gone
