"""What fit() does with the training's progress reports: a one-line progress display on stderr
(when wanted) and the user's callback."""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, Optional, TextIO

Callback = Callable[[Dict[str, Any]], Optional[bool]]


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class ProgressHook:
    """Called by the native training loop a few times a second and after each evaluation with
    a progress dict; returns False to stop training."""

    def __init__(self, callback: Optional[Callback], show: bool, epochs: float,
                 stream: Optional[TextIO] = None) -> None:
        self.callback = callback
        self.show = show
        self.epochs = epochs
        self.stream = stream if stream is not None else sys.stderr
        self.last_eval = ""
        self.drawn = 0.0
        self.width = 0

    def __call__(self, progress: Dict[str, Any]) -> bool:
        if progress.get("eval"):
            e = progress["eval"]
            self.last_eval = f" | P@1 {e['P@1']:.4f} P@5 {e['P@5']:.4f}"
        if self.show and (progress.get("eval") or time.monotonic() - self.drawn >= 0.25):
            self._draw(progress)
        if self.callback is not None and self.callback(progress) is False:
            return False
        return True

    def _draw(self, p: Dict[str, Any]) -> None:
        self.drawn = time.monotonic()
        line = (f"epoch {p['epoch']:.2f}/{self.epochs:g} | {p['samples']} samples | "
                f"{p['samples_per_second'] / 1000:.1f}k/s | loss {p['loss']:.4f} | "
                f"ETA {_duration(p['eta_seconds'])}{self.last_eval}")
        self.stream.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.stream.flush()

    def close(self, result: Optional[Dict[str, Any]]) -> None:
        """Ends the line: the summary of the run (or nothing when it raised)."""
        if not self.show:
            return
        if result is not None:
            line = (f"trained {result['samples']} samples in {result['seconds']:.1f}s "
                    f"({result['samples_per_second'] / 1000:.1f}k/s), loss "
                    f"{result['loss']:.4f}{' (stopped early)' if result['stopped'] else ''}"
                    f"{self.last_eval}")
            self.stream.write("\r" + line.ljust(self.width))
        if self.width or result is not None:
            self.stream.write("\n")
        self.stream.flush()
