"""Network cameras for tests, on 127.0.0.1 only: an HTTP Motion-JPEG camera (what many IP cameras serve)
showing real face images, and a server that accepts connections and never answers (a camera that is up
but stuck). Both real sockets that FFmpeg, inside OpenCV, talks to."""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
import time

import cv2
import numpy as np


class MjpegCamera:
    """``http://127.0.0.1:PORT/stream``: ``frames`` in turn at ``fps``, until ``stop``. ``port`` 0: any free one;
    a given port lets a test start the camera after serve already tries to reach it."""

    def __init__(self, frames: list[np.ndarray], port: int = 0, fps: float = 30.0) -> None:
        jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames]
        stopping = threading.Event()
        self._stopping = stopping

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not stopping.is_set():
                        jpeg = jpegs[i % len(jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        i += 1
                        time.sleep(1 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The camera goes away: open streams end, new connections are refused."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MjpegCamera:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte: an open or read on it waits for its timeout."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/stream"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)

    def close(self) -> None:
        self._socket.close()
        for connection in self._held:
            connection.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
