"""An entropy-coded bottleneck: a learned density over the codes, integer tables derived
from it once, and a range coder writing each sample's codes into a checked bitstream.

**The density** (:class:`FactorizedDensity`) is the non-parametric factorized prior of
Ballé et al., "Variational image compression with a scale hyperprior" (ICLR 2018, appendix
6.1): per channel, a cumulative distribution made of a small monotone network (matrices
kept non-negative through softplus, tanh gates whose factors stay above -1), evaluated at
a code +-0.5 to get the probability of that integer code. It is written here, not taken
from compressai, because compressai 1.2.8 pins numpy<2 (this project runs numpy 2, which
ai-edge-litert needs) and pulls in torch-geometric; the module is forty lines. During
training the codes are relaxed with uniform noise for the rate (the decoder still sees the
rounded codes, straight through), and the rate is ``-log2`` of the likelihood, in bits.
The codes are bounded (``0 .. 2^bits - 1``, the quantizer clamps), so the two ends carry
their tails' mass and no escape symbol is needed.

**The tables** (:class:`CodeTables`): after training, each channel's probabilities of
every code are evaluated once (float64), quantized to integer frequencies summing to
``2^PRECISION`` with every code at least 1, and written to ``entropy.npz`` beside head and
tail. Encoder and decoder read the same integers, so floating-point differences between
machines can never make them disagree.

**The coder** is constriction's range coder (``constriction.stream.queue``), a maintained
Rust library with numpy wheels, fed those tables.

**The bitstream** of one sample: a 6-byte header (one format byte, ``0xE0`` + the format
version, the payload's length in bytes as a LEB128 varint, one byte under 128 bytes, and a
CRC32 of the payload seeded with the tables' digest and the code shape) then the payload:
the range coder's 32-bit words, little-endian, with the last word's trailing zero bytes
left out (the decoder puts them back). The shape is not written: both ends know it from
the split, and a stream coded for another shape or other tables fails the checksum. A
stream that is truncated, corrupted, or coded with other tables fails the length or
checksum check with :class:`BitstreamError` before any decoding. Version 1 wrote the shape
(C, H, W as uint16) and a separate magic and version byte: 13 bytes of header, a sixth of
a typical sample's bitstream. Streams are self-delimiting, so a batch is the
samples' bitstreams one after the other.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

PRECISION = 16  # the tables' frequencies sum to 2^PRECISION
FAMILY = 0xE0  # the format byte's high nibble; its low nibble is the version
VERSION = 2
CRC = struct.Struct("<I")
HEADER_BYTES = 1 + 1 + CRC.size  # format byte, length (varint), CRC32: a payload < 128 B
TABLES_FILE = "entropy.npz"
DEFAULT_RATE_WEIGHT = 1e-4  # loss = MSE at the cut + this x bits per sample


class BitstreamError(ValueError):
    """A bitstream that fails its header, length or checksum check."""


class FactorizedDensity(nn.Module):
    """A learned density per channel over real values, with the probability of an
    integer code ``k`` as ``cdf(k + 0.5) - cdf(k - 0.5)`` (the ends take the tails)."""

    def __init__(self, channels: int, levels: int, filters: tuple[int, ...] = (3, 3, 3),
                 init_scale: float | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.levels = levels  # the largest code
        sizes = (1, *filters, 1)
        scale = (init_scale or max(levels / 2, 1.0)) ** (1 / (len(sizes) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(sizes) - 1):
            init = float(np.log(np.expm1(1 / scale / sizes[i + 1])))
            self.matrices.append(nn.Parameter(torch.full((channels, sizes[i + 1], sizes[i]),
                                                         init)))
            self.biases.append(nn.Parameter(torch.empty(channels, sizes[i + 1], 1)
                                            .uniform_(-0.5, 0.5)))
            if i < len(sizes) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, sizes[i + 1], 1)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The cumulative's logits at ``x`` of shape (C, 1, M)."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            x = torch.matmul(F.softplus(matrix), x) + bias
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, codes: torch.Tensor) -> torch.Tensor:
        """Probability of each (possibly noisy) code of ``codes`` (N, C, H, W)."""
        n, c = codes.shape[:2]
        values = codes.transpose(0, 1).reshape(c, 1, -1)
        lower = self.logits(values - 0.5)
        upper = self.logits(values + 0.5)
        # the ends carry the tails (the codes are clamped to 0 .. levels)
        low = torch.where(values - 0.5 <= 0, torch.zeros_like(lower), torch.sigmoid(lower))
        high = torch.where(values + 0.5 >= self.levels, torch.ones_like(upper),
                           torch.sigmoid(upper))
        # 1 - sigmoid(a) = sigmoid(-a) is kept in the subtraction's better-conditioned form
        sign = -torch.sign(lower + upper).detach()
        inner = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        likely = torch.where((values - 0.5 <= 0) | (values + 0.5 >= self.levels),
                             high - low, inner)
        likely = likely.clamp_min(1e-9)
        return likely.reshape(c, n, *codes.shape[2:]).transpose(0, 1)

    def bits(self, scaled: torch.Tensor, noisy: bool) -> torch.Tensor:
        """Bits per sample of ``scaled`` (the quantizer's values before rounding), relaxed
        with uniform noise in training, rounded otherwise."""
        codes = (scaled + torch.empty_like(scaled).uniform_(-0.5, 0.5)) if noisy else (
            torch.round(scaled))
        return -torch.log2(self.likelihood(codes)).flatten(1).sum(1)

    def probabilities(self) -> np.ndarray:
        """(C, levels + 1) probabilities of every code, in float64."""
        with torch.no_grad():
            density = self.double()
            try:
                edges = torch.arange(self.levels + 2, dtype=torch.float64) - 0.5
                cdf = torch.sigmoid(density.logits(edges.expand(self.channels, 1, -1)))[:, 0]
                cdf[:, 0], cdf[:, -1] = 0.0, 1.0
                return torch.diff(cdf, dim=1).clamp_min(0).numpy()
            finally:
                self.float()


@dataclass(frozen=True)
class CodeTables:
    """Integer frequencies (C, levels + 1) summing to ``2^PRECISION`` per channel, each at
    least 1: the one model both ends code with."""

    frequencies: np.ndarray

    @classmethod
    def from_probabilities(cls, probabilities: np.ndarray) -> CodeTables:
        total = 1 << PRECISION
        count = probabilities.shape[1]
        p = probabilities / probabilities.sum(1, keepdims=True)
        freq = np.maximum(1, np.floor(p * (total - count)).astype(np.int64) + 1)
        # the remainder to the most likely code (it stays >= 1 for any table here)
        freq[np.arange(len(freq)), freq.argmax(1)] += total - freq.sum(1)
        if (freq < 1).any():
            raise ValueError("a code table lost a symbol")
        return cls(freq.astype(np.uint32))

    @property
    def digest(self) -> int:
        """32 bits identifying the tables (the checksum's seed)."""
        return int.from_bytes(hashlib.sha256(self.frequencies.tobytes()).digest()[:4], "little")

    def save(self, path: Path) -> None:
        np.savez(path, frequencies=self.frequencies, precision=np.int64(PRECISION))

    @classmethod
    def load(cls, path: Path) -> CodeTables:
        with np.load(path) as saved:
            if int(saved["precision"]) != PRECISION:
                raise BitstreamError(f"{path} has tables at another precision.")
            return cls(saved["frequencies"].astype(np.uint32))

    def _rows(self, shape: tuple[int, ...]) -> np.ndarray:
        # per code in C, H, W order, its channel's probabilities (exact in float64)
        per_channel = self.frequencies.astype(np.float64) / float(1 << PRECISION)
        return np.ascontiguousarray(np.repeat(per_channel, int(np.prod(shape[1:])), axis=0))


class EntropyCoder:
    """Codes (uint8 0 .. levels, one sample of shape C, H, W) <-> checked bitstreams."""

    def __init__(self, tables: CodeTables, shape: tuple[int, ...]) -> None:
        import constriction

        if len(shape) != 3 or shape[0] != tables.frequencies.shape[0]:
            raise ValueError(f"codes of shape {shape} do not fit tables of "
                             f"{tables.frequencies.shape[0]} channels")
        self.tables = tables
        self.shape = tuple(int(s) for s in shape)
        self.levels = tables.frequencies.shape[1] - 1
        self.rows = tables._rows(self.shape)
        self.model = constriction.stream.model.Categorical(perfect=False)
        self.constriction = constriction
        # the checksum's seed: the tables and the shape, so either mismatch fails it
        self.seed = zlib.crc32(struct.pack("<HHH", *self.shape), tables.digest)

    def encode(self, codes: np.ndarray) -> bytes:
        symbols = np.ascontiguousarray(codes, dtype=np.int32).reshape(-1)
        if symbols.size != len(self.rows):
            raise ValueError(f"{symbols.size} codes; the tables code {len(self.rows)}")
        if symbols.min() < 0 or symbols.max() > self.levels:
            raise ValueError(f"codes outside 0 .. {self.levels}")
        encoder = self.constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols, self.model, self.rows)
        payload = encoder.get_compressed().astype("<u4").tobytes().rstrip(b"\0")
        return (bytes([FAMILY | VERSION]) + _varint(len(payload))
                + CRC.pack(zlib.crc32(payload, self.seed)) + payload)

    def decode(self, stream: bytes | np.ndarray) -> np.ndarray:
        """One sample's codes (uint8, shape C, H, W) from exactly one bitstream."""
        codes, used = self.decode_one(bytes(stream), 0)
        if used != len(stream):
            raise BitstreamError(f"{len(stream) - used} bytes follow the bitstream.")
        return codes

    def decode_one(self, data: bytes, offset: int) -> tuple[np.ndarray, int]:
        """The codes of the bitstream starting at ``offset`` of ``data``, and where it ends."""
        if len(data) - offset < HEADER_BYTES:
            raise BitstreamError(f"The bitstream has {len(data) - offset} bytes, fewer than "
                                 f"a header's {HEADER_BYTES} (truncated?).")
        first = data[offset]
        if first & 0xF0 != FAMILY:
            raise BitstreamError(f"The bitstream starts with byte {first:#04x}, not "
                                 f"{FAMILY | VERSION:#04x}: not an entropy-coded bottleneck's "
                                 "(or corrupted).")
        if first & 0x0F != VERSION:
            raise BitstreamError(f"The bitstream is format version {first & 0x0F}; this "
                                 f"server reads version {VERSION}.")
        length, at = _read_varint(data, offset + 1)
        if at + CRC.size > len(data):
            raise BitstreamError("The bitstream ends inside its header (truncated).")
        (crc,) = CRC.unpack_from(data, at)
        start = at + CRC.size
        payload = data[start:start + length]
        if len(payload) != length:
            raise BitstreamError(f"The bitstream's payload has {len(payload)} of its "
                                 f"{length} bytes (truncated).")
        if zlib.crc32(payload, self.seed) != crc:
            raise BitstreamError("The bitstream fails its CRC32 check: corrupted on the "
                                 "way, or coded with another split's tables or code shape.")
        words = payload + b"\0" * (-len(payload) % 4)
        decoder = self.constriction.stream.queue.RangeDecoder(
            np.frombuffer(words, dtype="<u4").astype(np.uint32))
        symbols = decoder.decode(self.model, self.rows)
        return np.asarray(symbols, dtype=np.uint8).reshape(self.shape), start + length

    def decode_many(self, data: bytes) -> np.ndarray:
        """Every sample of a batch of bitstreams one after the other: (N, C, H, W) uint8."""
        out, offset = [], 0
        while offset < len(data):
            codes, offset = self.decode_one(data, offset)
            out.append(codes)
        if not out:
            raise BitstreamError("The input holds no bitstream.")
        return np.stack(out)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    """A LEB128 length at ``at`` (at most 4 bytes) and where it ends."""
    value = 0
    for i in range(4):
        if at + i >= len(data):
            raise BitstreamError("The bitstream ends inside its header (truncated).")
        byte = data[at + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, at + i + 1
    raise BitstreamError("The bitstream's length field is malformed (corrupted).")


def entropy_stats(coder: EntropyCoder, codes: np.ndarray) -> dict:
    """Each sample of ``codes`` (N, C, H, W uint8) coded and decoded: the lengths of the real
    bitstreams, the coder's time per sample each way, and whether every decode is exact."""
    import time

    lengths, encode_s, decode_s, exact = [], [], [], True
    for sample in codes:
        t0 = time.perf_counter()
        stream = coder.encode(sample)
        t1 = time.perf_counter()
        back = coder.decode(stream)
        t2 = time.perf_counter()
        lengths.append(len(stream))
        encode_s.append(t1 - t0)
        decode_s.append(t2 - t1)
        exact = exact and bool(np.array_equal(back, sample))
    lengths_a = np.asarray(lengths)
    return {"bitstream_bytes_mean": float(lengths_a.mean()),
            "bitstream_bytes_p95": float(np.percentile(lengths_a, 95)),
            "bitstream_bytes_max": int(lengths_a.max()),
            "header_bytes": HEADER_BYTES,
            "encode_s_per_sample": float(np.median(encode_s)),
            "decode_s_per_sample": float(np.median(decode_s)),
            "decoded_exactly": exact, "samples": int(len(codes)),
            "coder": "constriction range coder (queue), tables in " + TABLES_FILE,
            "counted": "len(bitstream) per sample: header + range-coded payload"}
