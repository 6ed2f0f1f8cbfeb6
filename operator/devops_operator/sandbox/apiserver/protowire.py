"""The protobuf wire format: just enough to read Kubernetes objects and write an OpenAPI v2 document.

Varints, length-delimited fields and fixed 64/32-bit numbers; no schema here (the callers bring
their own message tables), so no generated stubs are needed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if position >= len(data):
            raise WireError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 64 bits")


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Each ``(field number, wire type, value)``: ints for varints and fixed numbers, bytes otherwise."""
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 0x7
        value: int | bytes
        if wire_type == VARINT:
            value, position = _read_varint(data, position)
        elif wire_type == LENGTH_DELIMITED:
            length, position = _read_varint(data, position)
            if position + length > len(data):
                raise WireError(f"field {number} is truncated")
            value, position = data[position : position + length], position + length
        elif wire_type == FIXED64:
            value, position = int.from_bytes(data[position : position + 8], "little"), position + 8
        elif wire_type == FIXED32:
            value, position = int.from_bytes(data[position : position + 4], "little"), position + 4
        else:
            raise WireError(f"unsupported wire type {wire_type} for field {number}")
        yield number, wire_type, value


def signed(value: int, bits: int = 64) -> int:
    """A varint as the two's-complement signed number int32/int64 fields carry."""
    value &= (1 << 64) - 1
    if value >= 1 << (bits - 1) and bits == 64:
        return value - (1 << 64)
    if bits == 32:
        value &= (1 << 32) - 1
        return value - (1 << 32) if value >= 1 << 31 else value
    return value


def fixed64_to_double(value: int) -> float:
    return float(struct.unpack("<d", value.to_bytes(8, "little"))[0])


# --- writing ----------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as 10-byte two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def varint_field(number: int, value: int | bool) -> bytes:
    return _key(number, VARINT) + _varint(int(value))


def bytes_field(number: int, value: bytes) -> bytes:
    return _key(number, LENGTH_DELIMITED) + _varint(len(value)) + value


def string_field(number: int, value: str) -> bytes:
    return bytes_field(number, value.encode("utf-8"))


def double_field(number: int, value: float) -> bytes:
    return _key(number, FIXED64) + struct.pack("<d", float(value))
