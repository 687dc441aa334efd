"""Where a request ends in the bytes received so far (web/framing.py), without sockets."""

from __future__ import annotations

from floatkey.web.framing import Action, Framer, Framing

HEAD = b"POST /api/v4/register HTTP/1.1\r\nHost: x\r\n"


def framer(max_header: int = 1024, max_body: int = 100, drain_limit: int = 1000) -> Framer:
    return Framer(max_header, max_body, drain_limit)


def fed_byte_by_byte(f: Framer, data: bytes) -> tuple[int, Framing | None]:
    """Feed ``data`` a byte at a time; how many bytes it took to decide, and the decision."""
    buf = bytearray()
    for n, byte in enumerate(data, 1):
        buf.append(byte)
        decision = f.check(buf)
        if decision is not None:
            return n, decision
    return len(data), None


def test_a_request_without_a_body_ends_at_the_blank_line():
    request = b"GET /api/v4/health HTTP/1.1\r\nHost: x\r\n\r\n"
    taken, decision = fed_byte_by_byte(framer(), request + b"GET /next")
    assert taken == len(request)
    assert decision == Framing(Action.REQUEST, len(request), len(request))


def test_a_body_is_waited_for_to_its_content_length():
    request = HEAD + b"Content-Length: 13\r\n\r\n" + b'{"product":1}'
    taken, decision = fed_byte_by_byte(framer(), request + b"POST")
    assert taken == len(request)
    assert decision is not None and decision.action is Action.REQUEST and decision.end == len(request)


def test_header_names_are_matched_whatever_their_case():
    request = HEAD + b"content-LENGTH:  2 \r\n\r\n{}"
    assert framer().check(request) == Framing(Action.REQUEST, len(request) - 2, len(request))


def test_a_chunked_body_ends_after_its_last_chunk_and_trailers():
    body = b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n"
    request = HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body
    taken, decision = fed_byte_by_byte(framer(), request + b"GET")
    assert taken == len(request)
    assert decision is not None and decision.action is Action.REQUEST and decision.end == len(request)


def test_headers_past_the_limit_are_refused_without_waiting_for_their_end():
    taken, decision = fed_byte_by_byte(framer(max_header=200), HEAD + b"X-Pad: " + b"a" * 1000)
    assert decision == Framing(Action.HEADERS_TOO_LARGE)
    assert taken == 201


def test_a_body_over_the_limit_is_drained_up_to_the_drain_limit_then_handed_over_headers_only():
    head = HEAD + b"Content-Length: 500\r\n\r\n"
    assert framer().check(head) == Framing(Action.DRAIN, len(head), skip=500)
    huge = HEAD + b"Content-Length: 5000\r\n\r\n"
    assert framer().check(huge) == Framing(Action.HEADERS_ONLY, len(huge))


def test_a_chunked_body_over_the_limit_is_refused():
    head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    request = head + b"40\r\n" + b"a" * 64 + b"\r\n" + b"40\r\n"  # 64 + 64 bytes, max_body 100
    assert framer().check(request) == Framing(Action.BODY_TOO_LARGE, len(head))


def test_what_cheroot_refuses_goes_to_it_at_once_and_closes_the_connection():
    for head in (
        HEAD + b"Content-Length: 12abc\r\n\r\n",
        HEAD + b"Transfer-Encoding: gzip\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF: cheroot answers 400
    ):
        decision = framer().check(head)
        assert decision is not None
        if decision.action is Action.REQUEST:  # the bare-LF request: it has no body
            assert decision.end == len(head)
        else:
            assert decision == Framing(Action.HEADERS_ONLY, len(head))
    bad_chunk = HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    assert framer().check(bad_chunk) == Framing(Action.HEADERS_ONLY, len(bad_chunk) - 4)


def test_expect_100_continue_is_noticed_only_when_a_body_follows():
    f = framer()
    assert f.check(HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n") is None
    assert f.expects_continue
    g = framer()
    g.check(HEAD + b"Expect: 100-continue\r\n\r\n")
    assert not g.expects_continue


def test_reset_starts_the_next_request():
    f = framer()
    first = HEAD + b"Content-Length: 2\r\n\r\n{}"
    assert f.check(first) is not None
    f.reset()
    second = b"GET / HTTP/1.1\r\n\r\n"
    assert f.check(second) == Framing(Action.REQUEST, len(second), len(second))


def test_a_chunked_body_that_is_mostly_framing_is_refused_however_small_its_content():
    head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    chunk = b"1;" + b"x" * 900 + b"\r\na\r\n"  # one byte of body, 900 of extension
    decision = framer(max_body=1000).check(head + chunk * 4)
    assert decision == Framing(Action.BODY_TOO_LARGE, len(head))
    assert framer(max_body=1000).check(head + chunk * 2) is None  # still within twice the limit
