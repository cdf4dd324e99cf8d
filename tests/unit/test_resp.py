"""The bus's own RESP2 reader and writer: replies split anywhere, every reply kind."""

import pytest
import redis.exceptions

from servicekit.resp import Reply, encode_command, parse_reply, split_replies

# A stream as Redis sends it to a subscriber and a publisher: confirmations, a message with
# CRLF and binary in its data, a PING answer, an integer, a nil, an error, a status.
STREAM = (
    b"*3\r\n$9\r\nsubscribe\r\n$11\r\nverify_user\r\n:1\r\n"
    b'*3\r\n$7\r\nmessage\r\n$11\r\nverify_user\r\n$9\r\n{"a":\r\n\x00}\r\n'
    b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    b":42\r\n"
    b"$-1\r\n"
    b"-ERR unknown command\r\n"
    b"+OK\r\n"
    b"*0\r\n"
)


def _plain(replies: list[Reply]) -> list[object]:
    return [repr(r) if isinstance(r, Exception) else r for r in replies]


def test_a_stream_reads_as_its_replies() -> None:
    replies, rest = split_replies(STREAM)
    assert rest == b""
    assert _plain(replies) == [
        [b"subscribe", b"verify_user", 1],
        [b"message", b"verify_user", b'{"a":\r\n\x00}'],
        [b"pong", b""],
        42,
        None,
        repr(redis.exceptions.ResponseError("ERR unknown command")),
        b"OK",
        [],
    ]


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_a_stream_cut_anywhere_reads_the_same(cut: int) -> None:
    """Bytes arrive in any chunks: the replies before the cut are handed on at once, the
    rest once the remainder arrives, and nothing is lost or read twice."""
    first, kept = split_replies(STREAM[:cut])
    second, rest = split_replies(kept + STREAM[cut:])
    assert rest == b""
    assert _plain(first + second) == _plain(split_replies(STREAM)[0])


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert encode_command(b"PUBLISH", b"ch", b"a\r\nb") == (
        b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$4\r\na\r\nb\r\n"
    )
    assert split_replies(encode_command(b"PING", b""))[0] == [[b"PING", b""]]


def test_bytes_that_are_not_resp_are_refused() -> None:
    with pytest.raises(ValueError, match="not a RESP2 reply"):
        parse_reply(b"HTTP/1.1 400 Bad Request\r\n", 0)
