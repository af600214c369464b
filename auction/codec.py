"""Encoders and decoders for commands and events, built once and reused (msgspec)."""

from __future__ import annotations

import hashlib

import msgspec

from auction.messages import AnyCommand, AnyEvent

command_encoder = msgspec.json.Encoder()
command_decoder = msgspec.json.Decoder(AnyCommand)
events_decoder = msgspec.json.Decoder(list[AnyEvent])


def encode_command(command: AnyCommand) -> bytes:
    return command_encoder.encode(command)


def decode_command(data: bytes | str) -> AnyCommand:
    command: AnyCommand = command_decoder.decode(data)
    return command


def encode_events(events: list[AnyEvent]) -> bytes:
    return command_encoder.encode(events)


def decode_events(data: bytes | str) -> list[AnyEvent]:
    return events_decoder.decode(data)


def fingerprint(command: AnyCommand) -> str:
    """The same decoded command gives the same fingerprint, however its JSON was spaced."""
    return hashlib.sha256(encode_command(command)).hexdigest()
