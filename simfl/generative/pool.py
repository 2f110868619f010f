"""Paper step S2, data synthesis: the server generates each device's requested
category-wise synthetic data and sends it down.

Generated images are kept on disk in a pool per (checkpoint, sampler setting, class), so
repeated runs and policy comparisons never regenerate them. The pool of class c is the
concatenation of fixed-size chunks, chunk j drawn with a seed derived from (the
generator's training seed, c, j): its content never depends on the order or size of past
requests. A request is served from the front of the pool: within one `synthesize` call
the devices take consecutive slices (device 0 the first n_0c images of class c, device 1
the next n_1c, ...), so two policies that ask for the same counts get the same images,
and only the shortfall is ever generated.

A run that trains only some devices (participants_per_round < devices) asks for its
images lazily (`SynthesisService.lazy`): positions of each class's sequence are handed out
in the order the run first uses the devices, so the positions in use are a prefix of the
sequence however few devices train, and only the chunks of that prefix are generated, kept
as single-chunk files beside the pool (`class_<c>.chunks/<j>-<sha256 prefix>.npy`). A
device that never trains costs nothing; devices first used in device order (every device
records its Fig. 5(h) similarity first in worlds of up to 500) get the images above.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from simfl.errors import SimflError
from simfl.files import sha256_file
from simfl.generative.checkpoint import default_cache_dir
from simfl.generative.train import TrainedGenerator
from simfl.learning.threads import intra_op_threads

CHUNK = 32  # images generated per class per chunk: the unit of the pool's seeding (small: sampling is costly)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class GenerationProgress:
    """Progress lines while images are generated: how many so far, how fast, and how long
    the rest takes. At most one line every `every_s` seconds, and one when all the images
    expected are made. In a lazy request the expected count is an upper bound (the images
    of every device, of which a run may use few), and the line says so."""

    def __init__(self, say: Callable[[str], None] | None, label: str, every_s: float = 10.0) -> None:
        self.say, self.label, self.every_s = say, label, every_s
        self.expected = self.generated = 0
        self.seconds = 0.0
        self.upper_bound = False
        self._last_line = -math.inf

    def expect(self, images: int, upper_bound: bool = False) -> None:
        """`images` more are to be generated (at most that many when `upper_bound`)."""
        self.expected += images
        self.upper_bound = self.upper_bound or upper_bound

    def generated_chunk(self, images: int, seconds: float) -> None:
        self.generated += images
        self.seconds += seconds
        now = time.monotonic()
        finished = self.generated >= self.expected
        if self.say is None or (now - self._last_line < self.every_s and not finished):
            return
        self._last_line = now
        per_image = self.seconds / self.generated
        left = max(self.expected - self.generated, 0)
        if finished:
            tail = "done"
        elif self.upper_bound:
            tail = f"at most {left} more as devices are first used, ~{per_image * left / 60:.1f} min at most"
        else:
            tail = f"{left} more, ~{per_image * left / 60:.1f} min left"
        self.say(f"{self.label}: generated {self.generated} images in {self.seconds:.0f} s "
                 f"({per_image:.2f} s per image); {tail}")


@dataclass
class SynthesisStats:
    """What the service has done since it was created."""

    generated_images: int = 0
    generation_s: float = 0.0
    served_images: int = 0


class SynthesisService:
    """Serves synthetic images from a trained generator through an on-disk pool.

    Parameters
    ----------
    generator
        A `TrainedGenerator` (from `load_generator`).
    pool_dir
        Root of the pools; default `<cache>/pools`. Images of class c live in
        `pool_dir/<checkpoint>/<sampler>/class_<c>.npy`, uint8 (n, C, H, W).
    progress
        Called with progress lines while images are generated (counts, rate and time
        left, at most every `progress_every_s` seconds) and with damaged files (default:
        stderr); None for silence.
    """

    def __init__(self, generator: TrainedGenerator, pool_dir: str | Path | None = None,
                 progress: Callable[[str], None] | None = _stderr, progress_every_s: float = 10.0) -> None:
        self.generator = generator
        self.progress = progress
        self.meter = GenerationProgress(progress, f"{generator.key} [{generator.sampler_tag}]", progress_every_s)
        root = Path(pool_dir).expanduser() if pool_dir is not None else default_pool_dir(generator)
        self.dir = root / generator.key / generator.sampler_tag
        self.stats = SynthesisStats()
        # Every chunk is sampled at the thread count the service was made at, even when a
        # lazy request is served from inside a block that trains at another: an image's
        # low bits depend on it, and a chunk must not depend on who asked for it first.
        self.threads = torch.get_num_threads()
        self._prefixes: dict[int, np.ndarray] = {}
        self._chunks: dict[tuple[int, int], np.ndarray] = {}

    @property
    def n_classes(self) -> int:
        return self.generator.n_classes

    @property
    def bytes_per_image(self) -> int:
        """Downlink size of one synthetic image: uint8 at the data's resolution."""
        return self.generator.bytes_per_image

    # ------------------------------------------------------------------ requests

    def _check_counts(self, counts: np.ndarray, what: str, ndim: int) -> np.ndarray:
        arr = np.asarray(counts)
        if arr.ndim != ndim or arr.shape[-1] != self.n_classes:
            want = "(C,)" if ndim == 1 else "(I, C)"
            raise SimflError(f"{what}: expected an array of shape {want} with C = {self.n_classes} classes of the "
                             f"generator {self.generator.key}, got shape {arr.shape}")
        if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
            raise SimflError(f"{what}: counts must be whole numbers of images, got {arr[np.mod(arr, 1) != 0][:3]}")
        arr = arr.astype(np.int64)
        if np.any(arr < 0):
            where = np.argwhere(arr < 0)[0]
            place = f"class {where[-1]}" if ndim == 1 else f"device {where[0]}, class {where[1]}"
            raise SimflError(f"{what}: negative count {arr[tuple(where)]} at {place}; counts must be >= 0")
        return arr

    def downlink_bytes(self, requests: np.ndarray) -> np.ndarray:
        """Bytes sent to each device (I,): its number of images x bytes per image."""
        req = self._check_counts(requests, "synthesis request", 2)
        return req.sum(axis=1) * self.bytes_per_image

    def synthesize(self, requests: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Images for every device: `requests[i, c]` images of class c for device i.

        Returns one (images uint8 (n_i, C, H, W), labels int64 (n_i,)) per device, images
        ordered by class. Devices get disjoint, consecutive slices of each class's pool.
        """
        req = self._check_counts(requests, "synthesis request", 2)
        totals = req.sum(axis=0)
        self.meter.expect(sum(self._missing_images(c, 0, int(totals[c])) for c in range(self.n_classes)))
        pools = [self.take(c, int(totals[c])) for c in range(self.n_classes)]
        offsets = np.zeros(self.n_classes, dtype=np.int64)
        out = []
        for row in req:
            images, labels = [], []
            for c in np.flatnonzero(row):
                n = int(row[c])
                images.append(pools[c][offsets[c]:offsets[c] + n])
                labels.append(np.full(n, c, dtype=np.int64))
                offsets[c] += n
            out.append(self._stack(images, labels))
        self.stats.served_images += int(req.sum())
        return out

    def lazy(self, requests: np.ndarray) -> "LazySynthesis":
        """`synthesize(requests)` served device by device, each device's images generated
        the first time it is asked for: the same images, without making those of
        devices that never ask."""
        req = self._check_counts(requests, "synthesis request", 2)
        totals = req.sum(axis=0)
        self.meter.expect(sum(self._missing_images(c, 0, int(totals[c])) for c in range(self.n_classes)), upper_bound=True)
        return LazySynthesis(self, req)

    def images(self, c: int, start: int, stop: int) -> np.ndarray:
        """Images start..stop-1 of class c's sequence, from the pool or its single-chunk
        files, generating (and keeping) only the chunks neither holds."""
        self._check_class(c)
        if stop <= start:
            return np.zeros((0, *self.generator.image_shape), dtype=np.uint8)
        if c not in self._prefixes:
            self._prefixes[c] = self._load(c)
        prefix = self._prefixes[c]
        if stop <= len(prefix):
            return prefix[start:stop]
        first, last = start // CHUNK, -(-stop // CHUNK)
        parts = [prefix[j * CHUNK:(j + 1) * CHUNK] if (j + 1) * CHUNK <= len(prefix) else self._kept_chunk(c, j)
                 for j in range(first, last)]
        run = np.concatenate(parts)
        return run[start - first * CHUNK:stop - first * CHUNK]

    def server_set(self, counts_per_class: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A server-side synthetic set (e.g. for SST): the first counts[c] images of each class."""
        counts = self._check_counts(counts_per_class, "server synthetic set", 1)
        self.meter.expect(sum(self._missing_images(c, 0, int(n)) for c, n in enumerate(counts)))
        images = [self.take(c, int(n)) for c, n in enumerate(counts) if n > 0]
        labels = [np.full(int(n), c, dtype=np.int64) for c, n in enumerate(counts) if n > 0]
        self.stats.served_images += int(counts.sum())
        return self._stack(images, labels)

    def _stack(self, images: list[np.ndarray], labels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if not images:
            return np.zeros((0, *self.generator.image_shape), dtype=np.uint8), np.zeros(0, dtype=np.int64)
        return np.concatenate(images), np.concatenate(labels)

    # ------------------------------------------------------------------ the pool

    def _check_class(self, c: int) -> None:
        if not 0 <= c < self.n_classes:
            raise SimflError(f"unknown class {c}; the generator {self.generator.key} has classes 0..{self.n_classes - 1}")

    def _path(self, c: int) -> Path:
        return self.dir / f"class_{c:03d}.npy"

    def _sum_path(self, c: int) -> Path:
        return self._path(c).with_suffix(".json")

    def _identity(self, c: int) -> dict:
        """What a pool file must be: this generator's, this sampler's, this class's images."""
        return {"generator": self.generator.key, "sampler": self.generator.sampler_tag, "class": int(c),
                "shape": list(self.generator.image_shape), "dtype": "uint8"}

    def _load(self, c: int) -> np.ndarray:
        """Class c's pool as saved, or an empty one when there is none or it is damaged: a
        file whose SHA-256, class, generator or shape is not the one recorded beside it is
        named and regenerated (its chunks are seeded, so it comes back identical)."""
        path, empty = self._path(c), np.zeros((0, *self.generator.image_shape), dtype=np.uint8)
        if not path.exists():
            return empty
        problem = None
        try:
            record = json.loads(self._sum_path(c).read_text())
            if {k: record.get(k) for k in self._identity(c)} != self._identity(c):
                problem = "it belongs to another generator, sampler or class"
            elif record.get("sha256") != sha256_file(path):
                problem = "its SHA-256 differs from the one recorded when it was written"
        except FileNotFoundError:
            problem = f"it has no checksum file {self._sum_path(c).name}"
        except (ValueError, OSError) as exc:
            problem = f"its checksum file is unreadable ({exc})"
        pool = None
        if problem is None:
            try:
                pool = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as exc:
                problem = f"it cannot be read ({exc})"
        if pool is not None and (pool.dtype != np.uint8 or pool.shape[1:] != tuple(self.generator.image_shape)):
            problem = f"it holds {pool.dtype} images of shape {pool.shape[1:]}"
        if problem is None and pool is not None:
            return pool
        if self.progress:
            self.progress(f"{path}: damaged ({problem}); not used, regenerating it")
        path.unlink(missing_ok=True)
        self._sum_path(c).unlink(missing_ok=True)
        return empty

    def _missing_images(self, c: int, start: int, stop: int) -> int:
        """Images of class c's positions start..stop-1 that neither the pool nor a
        single-chunk file holds: what serving them would generate (whole chunks)."""
        if stop <= start:
            return 0
        held = self.pool_size(c) // CHUNK
        chunk_files = {path.name.split("-", 1)[0] for path in self._chunk_dir(c).glob("*.npy")}
        missing = [j for j in range(start // CHUNK, -(-stop // CHUNK)) if j >= held and f"{j:06d}" not in chunk_files]
        return len(missing) * CHUNK

    def pool_size(self, c: int) -> int:
        path = self._path(c)
        if not path.exists():
            return 0
        return int(np.load(path, mmap_mode="r").shape[0])

    def take(self, c: int, n: int) -> np.ndarray:
        """The first n images of class c's pool, generating the shortfall (whole chunks)."""
        self._check_class(c)
        path = self._path(c)
        pool = self._load(c)
        if len(pool) < n:
            start = time.perf_counter()
            chunks, generated = [pool], 0
            first, last = len(pool) // CHUNK, -(-n // CHUNK)
            for j in range(first, last):
                kept = self._chunk_file(c, j)  # made earlier by a lazy request
                if kept is None:
                    began = time.perf_counter()
                    kept = self._chunk(c, j)
                    generated += len(kept)
                    self.meter.generated_chunk(len(kept), time.perf_counter() - began)
                chunks.append(kept)
            new = np.concatenate(chunks)
            self.stats.generation_s += time.perf_counter() - start
            self.stats.generated_images += generated
            self._save(c, new)
            pool = new
        return pool[:n]

    def _chunk(self, c: int, j: int) -> np.ndarray:
        seed = np.random.SeedSequence([int(self.generator.meta["seed"]), c, j]).generate_state(1)[0]
        with intra_op_threads(self.threads):
            return self.generator.sample(np.full(CHUNK, c, dtype=np.int64), seed=int(seed))

    # ------------------------------------------------------------------ single chunks

    def _chunk_dir(self, c: int) -> Path:
        return self.dir / f"class_{c:03d}.chunks"

    def _chunk_file(self, c: int, j: int) -> np.ndarray | None:
        """Chunk j of class c from its single-chunk file, or None when there is none. A file
        whose content does not hash to the prefix in its name is named and removed."""
        for path in sorted(self._chunk_dir(c).glob(f"{j:06d}-*.npy")):
            problem = None
            if not sha256_file(path).startswith(path.stem.split("-", 1)[1]):
                problem = "its SHA-256 is not the one in its name"
            else:
                try:
                    chunk = np.load(path, allow_pickle=False)
                except (ValueError, OSError) as exc:
                    problem = f"it cannot be read ({exc})"
                else:
                    if chunk.dtype != np.uint8 or chunk.shape != (CHUNK, *self.generator.image_shape):
                        problem = f"it holds {chunk.dtype} images of shape {chunk.shape}"
            if problem is None:
                return chunk
            if self.progress:
                self.progress(f"{path}: damaged ({problem}); not used, regenerating it")
            path.unlink(missing_ok=True)
        return None

    def _kept_chunk(self, c: int, j: int) -> np.ndarray:
        """Chunk j of class c: from memory, its file, or generated and written to its file."""
        key = (c, j)
        if key not in self._chunks:
            chunk = self._chunk_file(c, j)
            if chunk is None:
                start = time.perf_counter()
                chunk = self._chunk(c, j)
                self.stats.generation_s += time.perf_counter() - start
                self.stats.generated_images += len(chunk)
                self.meter.generated_chunk(len(chunk), time.perf_counter() - start)
                self._save_chunk(c, j, chunk)
            self._chunks[key] = chunk
        return self._chunks[key]

    def _save_chunk(self, c: int, j: int, chunk: np.ndarray) -> None:
        folder = self._chunk_dir(c)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{j:06d}.{os.getpid()}.tmp.npy"
        np.save(tmp, chunk)
        # the name carries the checksum, so a file and its record can never disagree; two
        # processes making the same chunk make the same bytes, and either one's rename wins
        os.replace(tmp, folder / f"{j:06d}-{sha256_file(tmp)[:16]}.npy")

    def _save(self, c: int, pool: np.ndarray) -> None:
        path = self._path(c)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, pool)
        # the checksum first, then the file it describes: a crash in between leaves a
        # mismatch, which `_load` regenerates, never a file taken on trust
        record = {**self._identity(c), "sha256": sha256_file(tmp), "images": int(len(pool))}
        sums = self._sum_path(c)
        sums_tmp = sums.with_name(f".{sums.name}.{os.getpid()}.tmp")
        sums_tmp.write_text(json.dumps(record, indent=1))
        os.replace(sums_tmp, sums)
        os.replace(tmp, path)


class LazySynthesis:
    """Each device's images of a synthesis request, made when first asked for.

    Positions of each class's sequence are handed out in the order devices are first
    asked for (or `assign`ed): the first takes positions 0 .. requests[i, c] - 1 of each
    class c it wants, the next the positions after those, and so on. The positions in use
    are therefore a prefix of every class's sequence, and only the chunks of that prefix
    are generated, however few of the devices ask. Asked in device order, device i gets
    what `SynthesisService.synthesize(requests)[i]` gives, bit for bit.

    `order` is the hand-out order so far; `assign(order)` on a fresh source restores it
    (a resumed run), so a device's images never depend on where a run was interrupted.
    """

    def __init__(self, service: SynthesisService, requests: np.ndarray) -> None:
        self.service = service
        self.requests = requests
        self._offsets = np.zeros_like(requests)
        self._assigned = np.zeros(len(requests), dtype=bool)
        self._next = np.zeros(requests.shape[1], dtype=np.int64)  # first free position per class
        self.order: list[int] = []
        self.devices_served = 0

    def __len__(self) -> int:
        return len(self.requests)

    def counts(self) -> np.ndarray:
        """Images each device is to get (I,), known without generating any."""
        return self.requests.sum(axis=1)

    def assign(self, devices: Iterable[int]) -> None:
        """Hand out positions, in this order, to those of `devices` that have none yet
        (nothing is generated)."""
        for i in devices:
            i = int(i)
            if not 0 <= i < len(self.requests):
                raise SimflError(f"synthesis request: no device {i}; the request has devices 0..{len(self.requests) - 1}")
            if self._assigned[i]:
                continue
            self._offsets[i] = self._next
            self._next += self.requests[i]
            self._assigned[i] = True
            self.order.append(i)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        self.assign([i])
        row, offsets = self.requests[i], self._offsets[i]
        classes = np.flatnonzero(row)
        images = [self.service.images(int(c), int(offsets[c]), int(offsets[c] + row[c])) for c in classes]
        labels = [np.full(int(row[c]), c, dtype=np.int64) for c in classes]
        self.service.stats.served_images += int(row.sum())
        self.devices_served += 1
        return self.service._stack(images, labels)


def default_pool_dir(generator: TrainedGenerator) -> Path:
    """`<cache>/pools` of the cache the generator's checkpoint is in, so pools follow
    generator.cache_dir (and --cache-dir) and nothing is written to another cache."""
    if generator.path.parent.name == "generators":
        return generator.path.parent.parent / "pools"
    return default_cache_dir() / "pools"


__all__ = ["CHUNK", "GenerationProgress", "LazySynthesis", "SynthesisService", "SynthesisStats", "default_pool_dir"]
